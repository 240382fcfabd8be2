"""The run lock: one run per ledger, and who holds it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.exceptions import LockHeld
from orchestrator.ledger import Ledger, LockInfo


def test_a_second_run_cannot_take_the_lock(path: Path) -> None:
    with Ledger.open(path) as first, Ledger.open(path) as second:
        first.lock()
        with pytest.raises(LockHeld, match=f"pid {os.getpid()}"):
            second.lock()
    with Ledger.open(path) as third:
        third.lock()


def test_the_holder_is_named_while_the_lock_is_held_and_cleared_on_close(path: Path) -> None:
    with Ledger.open(path) as run, Ledger.open(path) as observer:
        assert run.lock() is None
        holder = observer.lock_holder()
        assert holder is not None
        assert (holder.pid, holder.host) == (os.getpid(), socket.gethostname())
        assert holder.started_at.endswith("Z")
    assert Path(f"{path}.lock").read_bytes() == b""
    with Ledger.open(path) as observer:
        assert observer.lock_holder() is None


def test_taking_the_lock_twice_in_one_run_is_harmless(path: Path) -> None:
    with Ledger.open(path) as run:
        run.lock()
        assert run.lock() is None


def test_a_lock_left_by_a_killed_run_is_taken_and_its_holder_returned(path: Path) -> None:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    left = LockInfo(finished.pid, socket.gethostname(), "2024-05-01T10:00:00.000Z")
    path.parent.mkdir(parents=True)
    Path(f"{path}.lock").write_bytes(left.encode())
    with Ledger.open(path) as run:
        assert run.lock_holder() is None  # its process is gone
        assert run.lock() == left


def test_a_holder_on_another_host_is_reported_as_written(path: Path) -> None:
    elsewhere = LockInfo(1, "another-host", "2024-05-01T10:00:00.000Z")
    path.parent.mkdir(parents=True)
    Path(f"{path}.lock").write_bytes(elsewhere.encode())
    with Ledger.open(path) as observer:
        assert observer.lock_holder() == elsewhere
        assert str(elsewhere) == "pid 1 on another-host, started 2024-05-01T10:00:00.000Z"


@pytest.mark.parametrize("raw", [b"", b"not json", b'{"pid": "x"}', b"[]"])
def test_an_unreadable_lock_file_names_no_holder(raw: bytes) -> None:
    assert LockInfo.parse(raw) is None
