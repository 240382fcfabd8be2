"""The run lock: `<ledger>.lock`, held with flock by the one run working on a ledger."""

from __future__ import annotations

import fcntl
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from orchestrator.exceptions import LockHeld
from orchestrator.timefmt import format_utc, utc_now

__all__ = ["LockInfo", "RunLock", "lock_holder"]


@dataclass(frozen=True, slots=True)
class LockInfo:
    """Who holds (or held) a ledger's lock, as written in `<ledger>.lock`."""

    pid: int
    host: str
    started_at: str

    def encode(self) -> bytes:
        return (
            json.dumps({"pid": self.pid, "host": self.host, "started_at": self.started_at}) + "\n"
        ).encode()

    @classmethod
    def parse(cls, raw: bytes) -> LockInfo | None:
        try:
            data = json.loads(raw.decode())
            return cls(int(data["pid"]), str(data["host"]), str(data["started_at"]))
        except (ValueError, KeyError, TypeError):
            return None

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host}, started {self.started_at}"


def _lock_path(ledger_path: Path) -> str:
    return f"{ledger_path}.lock"


class RunLock:
    """A held lock. The kernel drops it when its holder dies, however it dies, so a lock file
    left by a killed run is stale by construction."""

    def __init__(self, fd: int, stale: LockInfo | None) -> None:
        self._fd: int | None = fd
        self.stale = stale  # the holder a previous run left in the file, if any

    @classmethod
    def acquire(cls, ledger_path: Path) -> RunLock:
        """Take the lock and write our holder into it, or raise LockHeld naming the holder."""
        fd = os.open(_lock_path(ledger_path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = LockInfo.parse(os.pread(fd, 4096, 0))
            os.close(fd)
            by = f" ({holder})" if holder else ""
            raise LockHeld(f"{ledger_path}: another run holds the ledger lock{by}") from None
        stale = LockInfo.parse(os.pread(fd, 4096, 0))
        mine = LockInfo(os.getpid(), socket.gethostname(), format_utc(utc_now()))
        os.ftruncate(fd, 0)
        os.pwrite(fd, mine.encode(), 0)
        return cls(fd, stale)

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # a clean exit leaves no holder behind
            os.close(self._fd)
            self._fd = None


def lock_holder(ledger_path: Path) -> LockInfo | None:
    """The run holding this ledger, judged from the lock file without touching the lock."""
    try:
        holder = LockInfo.parse(Path(_lock_path(ledger_path)).read_bytes())
    except FileNotFoundError:
        return None
    if holder is None or holder.host != socket.gethostname():
        return holder
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return None  # killed without a chance to clear the file
    except PermissionError:
        pass
    return holder
