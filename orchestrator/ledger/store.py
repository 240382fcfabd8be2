"""An open ledger file: its connection, the migrate-on-open, `atomic()` and the run lock.

`Store` is the base every part of `Ledger` builds on: the parts write only inside `atomic()`
and read through `_scalar` or the connection, within a `guarded` method.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Self

from orchestrator.ledger import schema
from orchestrator.ledger.errors import guarded, ledger_error, translating
from orchestrator.ledger.journal import Journal, choose_journal
from orchestrator.ledger.lock import LockInfo, RunLock, lock_holder
from orchestrator.timefmt import format_utc, utc_now

__all__ = ["Store"]


class Store:
    """A ledger's file and connection. Use it from one thread at a time."""

    # (job_level, rowid) of the last item a claim limited to some jobs took: the next such claim
    # starts after it. Whatever makes items pending again forgets it (see Transitions.claim).
    _claim_floor: tuple[int, int] | None = None

    def __init__(
        self, conn: sqlite3.Connection, path: Path, *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._conn = conn
        self.path = path
        self._clock = clock
        self._depth = 0
        self._lock: RunLock | None = None

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        journal: Journal = "auto",
        clock: Callable[[], datetime] = utc_now,
    ) -> Self:
        """Open (creating if need be) and migrate the ledger at `path`.

        `journal` "wal" or "delete" sets SQLite's journal mode; "auto" is WAL, or "delete" when
        the ledger's folder is a network mount (orchestrator.ledger.journal says why).
        """
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        if journal not in ("auto", "wal", "delete"):
            raise ValueError(f"journal must be auto, wal or delete, not {journal!r}")
        wanted = choose_journal(journal, path)
        with translating(path, "open ledger"):
            schema.prepare_file(path)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        ledger = cls(conn, path, clock=clock)
        try:
            with translating(path, "open ledger"):
                conn.execute("PRAGMA busy_timeout = 5000")
                conn.execute(f"PRAGMA synchronous = {synchronous}")
                conn.execute("PRAGMA foreign_keys = ON")
                # Read before anything writes, so a file we refuse stays byte-for-byte intact.
                if (version := schema.user_version(conn)) > schema.SCHEMA_VERSION:
                    reason = f"schema version {version} is newer than this picjobs knows"
                    raise ledger_error(path, "open ledger", f"{reason} ({schema.SCHEMA_VERSION})")
                # Takes effect only as a new file is created. Writing a page costs this machine
                # class a system call or two whatever its size, and a bulk load writes every
                # page: 16 KiB pages make a million-item expansion a fifth faster.
                conn.execute("PRAGMA page_size = 16384")
                mode = conn.execute(f"PRAGMA journal_mode = {wanted.upper()}").fetchone()[0]
                if str(mode).lower() != wanted:
                    raise ledger_error(
                        path, "open ledger", f"{wanted} journal not available (still {mode})"
                    )
            with translating(path, "migrate ledger"):
                schema.migrate(conn, path, ledger.atomic)
        except BaseException:
            ledger.close()
            raise
        return ledger

    @property
    def connection(self) -> sqlite3.Connection:
        """The underlying connection, for diagnostics; write only through the methods."""
        return self._conn

    def close(self) -> None:
        self._conn.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @guarded("lock ledger")
    def lock(self) -> LockInfo | None:
        """Hold `<ledger>.lock` until close(), so that only one run works on this ledger.

        Returns the holder a killed run left in the file, so the caller can say it was stale.
        """
        if self._lock is not None:
            return None
        self._lock = RunLock.acquire(self.path)
        return self._lock.stale

    @guarded("read ledger")
    def lock_holder(self) -> LockInfo | None:
        """The run holding this ledger, judged from the lock file without touching the lock."""
        return lock_holder(self.path)

    @contextmanager
    def atomic(self) -> Iterator[Self]:
        """One transaction; nested calls become savepoints. Rolls back on any exception."""
        if self._depth:
            name = f"picjobs_{self._depth}"
            begin, commit = f"SAVEPOINT {name}", f"RELEASE {name}"
            rollback: tuple[str, ...] = (f"ROLLBACK TO {name}", f"RELEASE {name}")
        else:
            # IMMEDIATE takes the write lock up front (waiting up to busy_timeout), so a
            # transaction that reads before it writes cannot fail halfway with SQLITE_BUSY.
            begin, commit, rollback = "BEGIN IMMEDIATE", "COMMIT", ("ROLLBACK",)
        self._control(begin)
        self._depth += 1
        try:
            yield self
            self._control(commit)
        except BaseException:
            # Some errors make SQLite roll the whole transaction back by itself.
            if self._conn.in_transaction:
                self._control(*rollback)
            raise
        finally:
            self._depth -= 1

    @guarded("read ledger")
    def integrity_check(self) -> str:
        rows = self._conn.execute("PRAGMA integrity_check").fetchall()
        return "\n".join(str(row[0]) for row in rows)

    def _control(self, *statements: str) -> None:
        with translating(self.path, "write ledger"):
            for statement in statements:
                self._conn.execute(statement)

    def _now(self) -> str:
        return format_utc(self._clock())

    def _write(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self.atomic():
            return self._conn.execute(sql, params)

    def _scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self._conn.execute(sql, params).fetchone()
        return None if row is None else row[0]
