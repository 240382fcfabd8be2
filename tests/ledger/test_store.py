"""The ledger file: opening it, errors as one line naming it, and `atomic()`."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from orchestrator.exceptions import LedgerError
from orchestrator.ledger import Ledger
from tests.ledger.support import items


def test_a_new_ledger_creates_its_folders_and_is_readable_by_its_owner_only(path: Path) -> None:
    with Ledger.open(path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.with_name(path.name + "-wal").stat().st_mode) == 0o600


def test_an_existing_ledger_readable_by_others_is_tightened(path: Path) -> None:
    Ledger.open(path).close()
    path.chmod(0o644)
    with Ledger.open(path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.mark.parametrize(("synchronous", "level"), [("NORMAL", 1), ("FULL", 2)])
def test_the_connection_uses_wal_and_the_requested_synchronous_mode(
    path: Path, synchronous: str, level: int
) -> None:
    with Ledger.open(path, synchronous=synchronous) as ledger:  # type: ignore[arg-type]
        pragma = ledger.connection.execute
        assert pragma("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert pragma("PRAGMA synchronous").fetchone()[0] == level
        assert pragma("PRAGMA busy_timeout").fetchone()[0] == 5000
        assert pragma("PRAGMA foreign_keys").fetchone()[0] == 1


def test_an_unknown_synchronous_mode_is_refused(path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        Ledger.open(path, synchronous="OFF")  # type: ignore[arg-type]


def test_a_file_that_is_not_a_database_is_refused_and_left_untouched(path: Path) -> None:
    path.parent.mkdir()
    path.write_bytes(b"bucket,key\nsrc,a.jpg\n")
    path.chmod(0o644)
    with pytest.raises(LedgerError, match="not a SQLite database") as caught:
        Ledger.open(path)
    assert str(caught.value).startswith(f"{path}: cannot open ledger: ")
    assert path.read_bytes() == b"bucket,key\nsrc,a.jpg\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


def test_a_path_through_a_regular_file_is_a_one_line_ledger_error(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("not a folder")
    target = tmp_path / "plain" / "sub" / "ledger.sqlite"
    with pytest.raises(LedgerError) as caught:
        Ledger.open(target)
    message = str(caught.value)
    assert message.startswith(f"{target}: cannot open ledger: ")
    assert "\n" not in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into a read-only folder")
def test_a_read_only_folder_is_a_one_line_ledger_error(tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o500)
    try:
        with pytest.raises(LedgerError) as caught:
            Ledger.open(folder / "ledger.sqlite")
    finally:
        folder.chmod(0o700)
    message = str(caught.value)
    assert message.startswith(f"{folder / 'ledger.sqlite'}: cannot open ledger: ")
    assert "\n" not in message


def test_using_a_closed_ledger_is_a_ledger_error(path: Path) -> None:
    ledger = Ledger.open(path)
    ledger.close()
    with pytest.raises(LedgerError, match=f"^{path}: cannot write ledger: "):
        ledger.add_items(items(1))


def test_atomic_rolls_back_on_an_exception(ledger: Ledger) -> None:
    with pytest.raises(RuntimeError, match="boom"), ledger.atomic():
        ledger.add_items(items(3))
        ledger.meta_set("manifest", "demo")
        raise RuntimeError("boom")
    assert ledger.total() == 0
    assert ledger.meta_get("manifest") is None
    assert not ledger.connection.in_transaction


def test_atomic_nests_with_savepoints(ledger: Ledger) -> None:
    with ledger.atomic():
        ledger.add_items(items(2))
        with pytest.raises(RuntimeError), ledger.atomic():
            ledger.add_items(items(2, start=2))
            with ledger.atomic():
                ledger.meta_set("inner", "yes")
            raise RuntimeError("inner")
        with ledger.atomic():
            ledger.meta_set("sibling", "kept")
        assert ledger.total() == 2
    assert ledger.total() == 2
    assert (ledger.meta_get("inner"), ledger.meta_get("sibling")) == (None, "kept")


def test_a_committed_transaction_is_visible_to_another_connection(path: Path) -> None:
    with Ledger.open(path) as ledger:
        ledger.add_items(items(2))
        with sqlite3.connect(path) as other:
            assert other.execute("SELECT count(*) FROM items").fetchone()[0] == 2
        other.close()


def test_integrity_check_says_ok(ledger: Ledger) -> None:
    ledger.add_items(items(10))
    assert ledger.integrity_check() == "ok"
