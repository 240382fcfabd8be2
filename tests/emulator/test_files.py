"""Object files read whole whatever size the index expected, and written whole."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.emulator.files import Files, read_file


@pytest.mark.parametrize("size", [0, 1, 633, (1 << 20) + 7, 3 << 20])
@pytest.mark.parametrize("expected", [0, 633, 10 << 20])
def test_a_file_is_read_whole_whatever_size_was_expected(
    tmp_path: Path, size: int, expected: int
) -> None:
    path = tmp_path / "object"
    content = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    path.write_bytes(content)

    assert read_file(path, expected) == content


def test_a_missing_file_or_a_folder_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        read_file(tmp_path / "gone", 10)
    with pytest.raises(OSError):
        read_file(tmp_path, 10)


def test_a_write_replaces_the_file_and_leaves_one_empty_scratch_folder(tmp_path: Path) -> None:
    files = Files(tmp_path / ".reserved")
    target = tmp_path / "a" / "b.jpg"

    files.write(target, b"first")
    written = files.write(target, b"second")

    assert target.read_bytes() == b"second"
    assert written.st_size == 6
    [scratch] = (tmp_path / ".reserved").iterdir()
    assert list(scratch.iterdir()) == []


def test_empty_scratch_folders_of_ended_processes_are_removed(tmp_path: Path) -> None:
    reserved = tmp_path / ".reserved"
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    kept = [f"tmp-{os.getppid()}-alive", f"tmp-{ended}-busy", "objects"]
    gone = ["tmp", f"tmp-{ended}-dead", f"tmp-{os.getpid()}-rescanned"]
    for name in kept + gone:
        (reserved / name).mkdir(parents=True)
    (reserved / f"tmp-{ended}-busy" / "t0").write_bytes(b"half")

    Files(reserved).write(tmp_path / "x.jpg", b"x")

    left = {p.name for p in reserved.iterdir()}
    assert set(kept) <= left and not set(gone) & left
    [ours] = left - set(kept)
    assert ours.startswith(f"tmp-{os.getpid()}-")


def test_a_folder_removed_by_hand_is_made_again(tmp_path: Path) -> None:
    files = Files(tmp_path / ".reserved")
    files.write(tmp_path / "a" / "1.jpg", b"1")
    (tmp_path / "a" / "1.jpg").unlink()
    (tmp_path / "a").rmdir()

    files.write(tmp_path / "a" / "2.jpg", b"2")

    assert (tmp_path / "a" / "2.jpg").read_bytes() == b"2"
