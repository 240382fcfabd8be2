"""The SQLite ledger: one row per planned item, its state, and the history of every attempt.

Every write happens inside `Ledger.atomic()`, and every sqlite3 or OS error is turned into a
`LedgerError` naming the file by `_translating`, so callers never see a foreign exception.
"""

from __future__ import annotations

import enum
import errno
import fcntl
import functools
import itertools
import json
import os
import socket
import sqlite3
from collections.abc import Callable, Collection, Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Concatenate, Final, Literal, ParamSpec, TypeVar

from orchestrator.exceptions import LedgerError, LockHeld, OutputCollision
from orchestrator.items import Item, ItemRecord

__all__ = [
    "CANCELLED",
    "FAILED",
    "FINAL_STATES",
    "PENDING",
    "SCHEMA_VERSION",
    "SUBMITTED",
    "SUBMITTING",
    "SUCCESS",
    "UNKNOWN",
    "ClaimedItem",
    "ItemRow",
    "JobUpdate",
    "Ledger",
    "Loader",
    "LockInfo",
    "Run",
    "State",
]


class State(enum.StrEnum):
    PENDING = "pending"  # planned, safe to send
    SUBMITTING = "submitting"  # intent committed: a POST may be in flight
    UNKNOWN = "unknown"  # a POST's outcome is unknown: reconcile before any resend
    SUBMITTED = "submitted"  # has a JobId, not final
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"


PENDING: Final = State.PENDING
SUBMITTING: Final = State.SUBMITTING
UNKNOWN: Final = State.UNKNOWN
SUBMITTED: Final = State.SUBMITTED
SUCCESS: Final = State.SUCCESS
FAILED: Final = State.FAILED
CANCELLED: Final = State.CANCELLED
FINAL_STATES: Final = frozenset({SUCCESS, FAILED, CANCELLED})

# CI job states; anything not listed is treated as not final, so the job keeps being polled.
_CI_STATES: Final[Mapping[str, State]] = {
    "Success": SUCCESS,
    "Failed": FAILED,
    "Cancel": CANCELLED,
    "Submitted": SUBMITTED,
    "Running": SUBMITTED,
    "Pause": SUBMITTED,
}

_CHUNK: Final = 1000
# Item ids are hashes, so new rows land on random pages of the item_id index and a commit
# rewrites about one page per row; committing 50 chunks at a time rewrites far fewer.
_CHUNKS_PER_COMMIT: Final = 50
_ROWS_PER_INSERT: Final = 50  # at most 550 parameters: within the 999 of older SQLite builds
_SQLITE_MAGIC: Final = b"SQLite format 3\x00"
_ITEM_COLUMNS: Final = (
    "item_id, bucket, key, output_bucket, output_region, output_key, job_level, user_data, "
    "etag, size, last_modified"
)
_ROW_EXTRAS: Final = (
    "state", "job_id", "attempts", "code", "message", "result",
    "created_at", "updated_at", "submitted_at", "finished_at",
)  # fmt: skip
_ROW_COLUMNS: Final = f"{_ITEM_COLUMNS}, {', '.join(_ROW_EXTRAS)}"
_INSERT_ITEM: Final = (
    f"INSERT INTO items ({_ITEM_COLUMNS}, state, created_at, updated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT (item_id) DO NOTHING"
)
# With reprocess_changed: an object whose ETag differs from the one its successful job read
# is planned again. Its attempts count and history stay.
_UPSERT_CHANGED: Final = (
    _INSERT_ITEM.removesuffix("DO NOTHING")
    + "DO UPDATE SET etag = excluded.etag, size = excluded.size, "
    "last_modified = excluded.last_modified, state = 'pending', job_id = NULL, code = NULL, "
    "message = NULL, result = NULL, submitted_at = NULL, finished_at = NULL, "
    "updated_at = excluded.updated_at "
    "WHERE items.state = 'success' AND excluded.etag IS NOT NULL AND items.etag IS NOT NULL "
    "AND items.etag != excluded.etag"
)
_INSERT_LOG: Final = (
    "INSERT INTO attempts_log (item_id, attempt, job_id, outcome, code, message, at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_TO_SUBMITTED: Final = (
    "UPDATE items SET updated_at = ?1, submitted_at = ?1, state = 'submitted', job_id = ?3, "
    "code = NULL, message = NULL WHERE item_id = ?2 AND state IN ('submitting', 'unknown')"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimedItem(Item):
    """An item handed to the submitter, with the number of attempts including this one."""

    attempts: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemRow(Item):
    """Every column of one ledger row, for reports."""

    state: State
    job_id: str | None
    attempts: int
    code: str | None
    message: str | None
    result: dict[str, Any] | None
    created_at: str
    updated_at: str
    submitted_at: str | None
    finished_at: str | None


@dataclass(frozen=True, slots=True)
class JobUpdate:
    """What describing one job told us. `finished_at` is CI's EndTime, None while CI says '-'."""

    job_id: str
    state: str
    code: str | None = None
    message: str | None = None
    result: dict[str, Any] | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Run:
    run_id: int
    started_at: str
    finished_at: str | None
    pid: int
    host: str
    args: dict[str, Any]
    exit_code: int | None
    counts: dict[str, int] | None


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


@dataclass(frozen=True, slots=True)
class _Migration:
    version: int
    name: str
    statements: tuple[str, ...]


# Applied in order, each in one transaction with its `PRAGMA user_version`. Never edit one that
# has shipped: add the next.
_MIGRATIONS: Final = (
    _Migration(
        1,
        "initial schema",
        (
            """CREATE TABLE items (
                item_id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL,
                output_bucket TEXT NOT NULL, output_region TEXT NOT NULL, output_key TEXT NOT NULL,
                job_level INTEGER NOT NULL, user_data TEXT, etag TEXT, size INTEGER,
                last_modified TEXT,
                state TEXT NOT NULL CHECK (state IN ('pending', 'submitting', 'unknown',
                    'submitted', 'success', 'failed', 'cancelled')),
                job_id TEXT, attempts INTEGER NOT NULL DEFAULT 0, code TEXT, message TEXT,
                result TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
                submitted_at TEXT, finished_at TEXT)""",
            "CREATE UNIQUE INDEX items_output ON items (output_bucket, output_key)",
            "CREATE INDEX items_state_level ON items (state, job_level DESC)",
            "CREATE INDEX items_job_id ON items (job_id) WHERE job_id IS NOT NULL",
            # Keeps the tracker's paging by rowid cheap; pending rows never enter it.
            "CREATE INDEX items_outstanding ON items (state) WHERE state = 'submitted'",
            """CREATE TABLE attempts_log (
                item_id TEXT NOT NULL REFERENCES items (item_id) ON DELETE CASCADE,
                attempt INTEGER NOT NULL, job_id TEXT, outcome TEXT NOT NULL, code TEXT,
                message TEXT, at TEXT NOT NULL)""",
            "CREATE INDEX attempts_log_item ON attempts_log (item_id, attempt)",
            """CREATE TABLE runs (
                run_id INTEGER PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT,
                pid INTEGER NOT NULL, host TEXT NOT NULL, args TEXT NOT NULL, exit_code INTEGER,
                counts TEXT)""",
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ),
    ),
    _Migration(
        2,
        "item_id as a unique index, which a bulk load can drop and rebuild",
        (
            """CREATE TABLE items_v2 (
                item_id TEXT NOT NULL, bucket TEXT NOT NULL, key TEXT NOT NULL,
                output_bucket TEXT NOT NULL, output_region TEXT NOT NULL, output_key TEXT NOT NULL,
                job_level INTEGER NOT NULL, user_data TEXT, etag TEXT, size INTEGER,
                last_modified TEXT,
                state TEXT NOT NULL CHECK (state IN ('pending', 'submitting', 'unknown',
                    'submitted', 'success', 'failed', 'cancelled')),
                job_id TEXT, attempts INTEGER NOT NULL DEFAULT 0, code TEXT, message TEXT,
                result TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
                submitted_at TEXT, finished_at TEXT)""",
            "INSERT INTO items_v2 (rowid, item_id, bucket, key, output_bucket, output_region, "
            "output_key, job_level, user_data, etag, size, last_modified, state, job_id, "
            "attempts, code, message, result, created_at, updated_at, submitted_at, finished_at) "
            "SELECT rowid, item_id, bucket, key, output_bucket, output_region, output_key, "
            "job_level, user_data, etag, size, last_modified, state, job_id, attempts, code, "
            "message, result, created_at, updated_at, submitted_at, finished_at FROM items",
            "DROP TABLE items",
            "ALTER TABLE items_v2 RENAME TO items",
            "CREATE UNIQUE INDEX items_id ON items (item_id)",
            "CREATE UNIQUE INDEX items_output ON items (output_bucket, output_key)",
            "CREATE INDEX items_state_level ON items (state, job_level DESC)",
            "CREATE INDEX items_job_id ON items (job_id) WHERE job_id IS NOT NULL",
            "CREATE INDEX items_outstanding ON items (state) WHERE state = 'submitted'",
        ),
    ),
)
# The indexes a bulk load into an empty items table drops, then builds by sorting once: a
# million inserts into a random-order index cost several times that. Unique ones first, in the
# order their violations are resolved.
_BULK_INDEXES: Final = (
    ("items_id", "CREATE UNIQUE INDEX items_id ON items (item_id)"),
    ("items_output", "CREATE UNIQUE INDEX items_output ON items (output_bucket, output_key)"),
    ("items_state_level", "CREATE INDEX items_state_level ON items (state, job_level DESC)"),
)
SCHEMA_VERSION: Final = _MIGRATIONS[-1].version

_P = ParamSpec("_P")
_R = TypeVar("_R")


@contextmanager
def _translating(path: Path, action: str) -> Iterator[None]:
    """The one place where sqlite3 and OS errors become LedgerError."""
    try:
        yield
    except sqlite3.Error as exc:
        raise _error(path, action, str(exc)) from exc
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.filename is not None and os.fspath(exc.filename) != os.fspath(path):
            reason = f"{reason}: {exc.filename}"
        raise _error(path, action, reason) from exc


def _error(path: Path, action: str, reason: str) -> LedgerError:
    return LedgerError(" ".join(f"{path}: cannot {action}: {reason}".split()))


def _guarded(
    action: str,
) -> Callable[[Callable[Concatenate[Ledger, _P], _R]], Callable[Concatenate[Ledger, _P], _R]]:
    def decorate(
        method: Callable[Concatenate[Ledger, _P], _R],
    ) -> Callable[Concatenate[Ledger, _P], _R]:
        @functools.wraps(method)
        def wrapper(self: Ledger, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            with _translating(self.path, action):
                return method(self, *args, **kwargs)

        return wrapper

    return decorate


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(value: Mapping[str, Any] | None) -> str | None:
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _record_id(record: ItemRecord) -> str:
    return record[0]


def _chunks(iterable: Iterable[_R], size: int) -> Iterator[list[_R]]:
    iterator = iter(iterable)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _prepare_file(path: Path) -> None:
    """Create the file private to its owner before SQLite does, and refuse a non-database."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:  # a regular file where a folder should be
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), exc.filename) from exc
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        header = os.pread(fd, len(_SQLITE_MAGIC), 0)
        if header and header != _SQLITE_MAGIC:
            raise _error(path, "open ledger", "not a SQLite database")
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    # SQLite gives new -wal and -shm files the main file's mode; existing ones need tightening.
    for suffix in ("-wal", "-shm"):
        sidecar = path.with_name(path.name + suffix)
        if sidecar.exists() and sidecar.stat().st_mode & 0o077:
            sidecar.chmod(0o600)


class Ledger:
    """A picjobs ledger. Use it from one thread at a time."""

    def __init__(
        self, conn: sqlite3.Connection, path: Path, *, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        self._conn = conn
        self.path = path
        self._clock = clock
        self._depth = 0
        self._lock_fd: int | None = None

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        clock: Callable[[], datetime] = _utcnow,
    ) -> Ledger:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be NORMAL or FULL, not {synchronous!r}")
        with _translating(path, "open ledger"):
            _prepare_file(path)
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        ledger = cls(conn, path, clock=clock)
        try:
            with _translating(path, "open ledger"):
                conn.execute("PRAGMA busy_timeout = 5000")
                conn.execute(f"PRAGMA synchronous = {synchronous}")
                conn.execute("PRAGMA foreign_keys = ON")
                # Read before anything writes, so a file we refuse stays byte-for-byte intact.
                if (version := ledger._user_version()) > SCHEMA_VERSION:
                    reason = f"schema version {version} is newer than this picjobs knows"
                    raise _error(path, "open ledger", f"{reason} ({SCHEMA_VERSION})")
                # Takes effect only as a new file is created. Writing a page costs this machine
                # class a system call or two whatever its size, and a bulk load writes every
                # page: 16 KiB pages make a million-item expansion a fifth faster.
                conn.execute("PRAGMA page_size = 16384")
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise _error(path, "open ledger", f"WAL journal not available ({mode})")
            with _translating(path, "migrate ledger"):
                ledger._migrate()
        except BaseException:
            ledger.close()
            raise
        return ledger

    def _user_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        for migration in _MIGRATIONS:
            if self._user_version() >= migration.version:
                continue
            # Rebuilding a table drops the old one, which with foreign keys enforced would
            # cascade into attempts_log; SQLite's documented procedure turns them off.
            with self._foreign_keys_off(), self.atomic():
                # Another process may have migrated while we waited for the write lock.
                if self._user_version() < migration.version:
                    for statement in migration.statements:
                        self._conn.execute(statement)
                    if self._conn.execute("PRAGMA foreign_key_check").fetchone() is not None:
                        raise _error(self.path, "migrate ledger", "foreign key check failed")
                    self._conn.execute(f"PRAGMA user_version = {migration.version}")

    @contextmanager
    def _foreign_keys_off(self) -> Iterator[None]:
        self._conn.execute("PRAGMA foreign_keys = OFF")  # a no-op inside a transaction
        try:
            yield
        finally:
            self._conn.execute("PRAGMA foreign_keys = ON")

    @property
    def connection(self) -> sqlite3.Connection:
        """The underlying connection, for diagnostics; write only through the methods."""
        return self._conn

    def close(self) -> None:
        self._conn.close()
        if self._lock_fd is not None:
            os.ftruncate(self._lock_fd, 0)  # a clean exit leaves no holder behind
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @_guarded("lock ledger")
    def lock(self) -> LockInfo | None:
        """Hold `<ledger>.lock` until close(), so that only one run works on this ledger.

        The kernel drops the lock when its holder dies, however it dies, so a lock file left by
        a killed run is stale by construction; its holder is returned so the caller can say so.
        """
        if self._lock_fd is not None:
            return None
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = LockInfo.parse(os.pread(fd, 4096, 0))
            os.close(fd)
            by = f" ({holder})" if holder else ""
            raise LockHeld(f"{self.path}: another run holds the ledger lock{by}") from None
        stale = LockInfo.parse(os.pread(fd, 4096, 0))
        mine = LockInfo(os.getpid(), socket.gethostname(), _iso(_utcnow()))
        os.ftruncate(fd, 0)
        os.pwrite(fd, mine.encode(), 0)
        self._lock_fd = fd
        return stale

    @contextmanager
    def atomic(self) -> Iterator[Ledger]:
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

    def _control(self, *statements: str) -> None:
        with _translating(self.path, "write ledger"):
            for statement in statements:
                self._conn.execute(statement)

    def _now(self) -> str:
        return _iso(self._clock())

    def _write(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self.atomic():
            return self._conn.execute(sql, params)

    def _scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self._conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    # Planning

    def add_items(self, items: Iterable[Item], *, refresh_changed: bool = False) -> int:
        """Insert the items not yet in the ledger; return how many were new (see `loading`)."""
        with self.loading(refresh_changed=refresh_changed) as loader:
            loader.add(item.record() for item in items)
        return loader.added

    @contextmanager
    def loading(self, *, refresh_changed: bool = False) -> Iterator[Loader]:
        """Add planned items through the Loader this yields; its `added` counts the new ones.

        With `refresh_changed`, a succeeded item whose object now has another ETag goes back to
        pending (and counts as new).

        Into an empty ledger everything goes in one transaction: rows first, then the indexes,
        each built by one sort. A repeated item is kept once. An OutputCollision rolls all of it
        back. Into a ledger that has items, new ones are committed every 50,000, in id order,
        and a collision rolls back only the uncommitted part: what was committed is valid.
        """
        with _translating(self.path, "write ledger"):
            empty = self._conn.execute("SELECT 1 FROM items LIMIT 1").fetchone() is None
        # Foreign keys can only be switched off outside a transaction.
        if not empty or self._depth:
            loader = Loader(self, refresh_changed=refresh_changed, bulk=False)
            yield loader
            loader.flush()
            return
        with _translating(self.path, "write ledger"), self._foreign_keys_off(), self.atomic():
            for name, _create in _BULK_INDEXES:
                self._conn.execute(f"DROP INDEX {name}")
            loader = Loader(self, refresh_changed=refresh_changed, bulk=True)
            yield loader
            self._build_bulk_indexes()
            loader.added = self._scalar("SELECT count(*) FROM items")

    def _build_bulk_indexes(self) -> None:
        conn = self._conn
        for name, create in _BULK_INDEXES:
            try:
                conn.execute(create)
                continue
            except sqlite3.IntegrityError:
                if name != "items_id":
                    self._raise_bulk_collision()
                    raise
            # The same item planned twice (a key listed twice): keep its first row.
            conn.execute(
                "DELETE FROM items WHERE rowid NOT IN (SELECT min(rowid) FROM items GROUP BY item_id)"
            )
            conn.execute(create)

    def _raise_bulk_collision(self) -> None:
        row = self._conn.execute(
            "SELECT output_bucket, output_key, min(key), max(key) FROM items "
            "GROUP BY output_bucket, output_key HAVING count(*) > 1 LIMIT 1"
        ).fetchone()
        if row is not None:
            raise OutputCollision(f"{row[0]}/{row[1]}", row[2], row[3])

    def _add_group(self, group: list[ItemRecord], insert: str) -> int:
        conn = self._conn
        # Item ids are hashes: inserted in id order, each commit walks the id index once
        # instead of touching a random page per row.
        group.sort(key=_record_id)
        with self.atomic():
            before = conn.total_changes
            now = (self._now(),) * 2
            for chunk in _chunks(group, _CHUNK):
                try:
                    conn.executemany(insert, [record + now for record in chunk])
                except sqlite3.IntegrityError:
                    self._raise_collision(chunk)
                    raise
            return conn.total_changes - before

    def _raise_collision(self, chunk: list[ItemRecord]) -> None:
        seen: dict[tuple[str, str], ItemRecord] = {}
        for record in chunk:
            item_id, key, output = record[0], record[2], (record[3], record[5])
            row = self._conn.execute(
                "SELECT item_id, key FROM items WHERE output_bucket = ? AND output_key = ?", output
            ).fetchone()
            if row is not None and row[0] != item_id:
                raise OutputCollision("/".join(output), *sorted((row[1], key)))
            first = seen.setdefault(output, record)
            if first[0] != item_id:
                raise OutputCollision("/".join(output), *sorted((first[2], key)))

    # Submission

    @_guarded("write ledger")
    def claim(self, limit: int) -> list[ClaimedItem]:
        """Move up to `limit` pending items, highest level first, to submitting; return them."""
        if limit <= 0:
            return []
        now = self._now()
        with self.atomic():
            rows = self._conn.execute(
                f"SELECT rowid, {_ITEM_COLUMNS}, attempts + 1 FROM items WHERE state = 'pending' "
                "ORDER BY job_level DESC, rowid LIMIT ?",
                (limit,),
            ).fetchall()
            self._conn.executemany(
                "UPDATE items SET state = 'submitting', attempts = attempts + 1, updated_at = ? "
                "WHERE rowid = ?",
                [(now, row[0]) for row in rows],
            )
        return [ClaimedItem(*row[1:-1], attempts=row[-1]) for row in rows]

    def _transition(self, sql: str, rows: Iterable[tuple[str, tuple[Any, ...]]]) -> int:
        """Run `sql` (an UPDATE whose first parameter is the time) once per (outcome, params),
        and log an attempt for every row it changed."""
        now = self._now()
        log: list[tuple[Any, ...]] = []
        with self.atomic():
            for outcome, params in rows:
                for item_id, attempt, job_id, code, message in self._conn.execute(
                    f"{sql} RETURNING item_id, attempts, job_id, code, message", (now, *params)
                ):
                    log.append((item_id, attempt, job_id, outcome, code, message, now))
            self._conn.executemany(_INSERT_LOG, log)
        return len(log)

    @_guarded("write ledger")
    def mark_submitted(self, pairs: Iterable[tuple[str, str]]) -> int:
        """(item_id, job_id): CI accepted the job."""
        return self._transition(_TO_SUBMITTED, (("submitted", pair) for pair in pairs))

    @_guarded("write ledger")
    def adopt(self, pairs: Iterable[tuple[str, str]]) -> int:
        """(item_id, job_id): reconciliation found the job of an unknown or submitting item."""
        return self._transition(_TO_SUBMITTED, (("adopted", pair) for pair in pairs))

    @_guarded("write ledger")
    def mark_unknown(self, ids: Iterable[str]) -> int:
        """The POST for these items may have taken effect: reconcile before any resend."""
        return self._transition(
            "UPDATE items SET updated_at = ?, state = 'unknown' "
            "WHERE item_id = ? AND state = 'submitting'",
            (("unknown", (item_id,)) for item_id in ids),
        )

    @_guarded("write ledger")
    def release(self, ids: Iterable[str]) -> int:
        """Back to pending: the request never took effect. Attempts stay counted."""
        return self._transition(
            "UPDATE items SET updated_at = ?, state = 'pending' "
            "WHERE item_id = ? AND state IN ('submitting', 'unknown')",
            (("released", (item_id,)) for item_id in ids),
        )

    @_guarded("write ledger")
    def mark_failed(self, rows: Iterable[tuple[str, str, str]]) -> int:
        """(item_id, code, message): a permanent failure of an item that is not final yet."""
        return self._transition(
            "UPDATE items SET updated_at = ?1, finished_at = ?1, state = 'failed', "
            "code = ?3, message = ?4 "
            "WHERE item_id = ?2 AND state NOT IN ('success', 'failed', 'cancelled')",
            (("failed", row) for row in rows),
        )

    @_guarded("write ledger")
    def record_states(self, rows: Iterable[JobUpdate]) -> int:
        """Apply described job states. A final state ends its item, which never moves back."""
        return self._transition(
            "UPDATE items SET updated_at = ?1, state = ?3, code = ?4, message = ?5, "
            "result = ?6, finished_at = coalesce(?7, ?1) "
            "WHERE job_id = ?2 AND state IN ('submitted', 'unknown', 'submitting')",
            _final_updates(rows),
        )

    @_guarded("write ledger")
    def recover_interrupted(self) -> int:
        """At startup: the previous process may have sent any item it left submitting."""
        now = self._now()
        with self.atomic():
            changed = self._conn.execute(
                "UPDATE items SET state = 'unknown', updated_at = ? WHERE state = 'submitting' "
                "RETURNING item_id, attempts, job_id, 'unknown', code, message, ?",
                (now, now),
            ).fetchall()
            self._conn.executemany(_INSERT_LOG, changed)
        return len(changed)

    @_guarded("write ledger")
    def retry_failed(self) -> int:
        """Failed items go back to pending; their attempts and history are kept."""
        return self._write(
            "UPDATE items SET state = 'pending', updated_at = ?, job_id = NULL, code = NULL, "
            "message = NULL, result = NULL, submitted_at = NULL, finished_at = NULL "
            "WHERE state = 'failed'",
            (self._now(),),
        ).rowcount

    @_guarded("write ledger")
    def cancel_pending(self, message: str | None = None) -> int:
        """Pending items (never sent to CI) become cancelled, so that no run submits them."""
        now = self._now()
        with self.atomic():
            changed = self._conn.execute(
                "UPDATE items SET state = 'cancelled', updated_at = ?1, finished_at = ?1, "
                "code = NULL, message = ?2 WHERE state = 'pending' "
                "RETURNING item_id, attempts, job_id, 'cancelled', code, message, ?1",
                (now, message),
            ).fetchall()
            self._conn.executemany(_INSERT_LOG, changed)
        return len(changed)

    # Queries

    @_guarded("read ledger")
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys((state.value for state in State), 0)
        counts.update(self._conn.execute("SELECT state, count(*) FROM items GROUP BY state"))
        return counts

    @_guarded("read ledger")
    def count_final_of(self, other: Ledger) -> int:
        """How many of the items in `other` (another ledger file) are in a final state here:
        one join, since a million lookups from Python cost minutes."""
        conn = self._conn
        conn.execute("ATTACH DATABASE ? AS other", (str(other.path),))
        try:
            return int(
                conn.execute(
                    "SELECT count(*) FROM other.items AS o JOIN main.items AS i "
                    "ON i.item_id = o.item_id WHERE i.state IN ('success', 'failed', 'cancelled')"
                ).fetchone()[0]
            )
        finally:
            conn.execute("DETACH DATABASE other")

    @_guarded("read ledger")
    def total(self) -> int:
        return int(self._scalar("SELECT count(*) FROM items"))

    @_guarded("read ledger")
    def pending_count(self) -> int:
        return int(self._scalar("SELECT count(*) FROM items WHERE state = 'pending'"))

    @_guarded("read ledger")
    def outstanding_count(self) -> int:
        return int(self._scalar("SELECT count(*) FROM items WHERE state = 'submitted'"))

    @_guarded("read ledger")
    def unknown_items(self, limit: int) -> list[ClaimedItem]:
        rows = self._conn.execute(
            f"SELECT {_ITEM_COLUMNS}, attempts FROM items WHERE state = 'unknown' "
            "ORDER BY rowid LIMIT ?",
            (limit,),
        )
        return [ClaimedItem(*row[:-1], attempts=row[-1]) for row in rows]

    @_guarded("read ledger")
    def past_job_ids(self, item_id: str) -> set[str]:
        """Every JobId this item has had: earlier jobs that reconciliation must not adopt."""
        rows = self._conn.execute(
            "SELECT DISTINCT job_id FROM attempts_log WHERE item_id = ? AND job_id IS NOT NULL",
            (item_id,),
        )
        return {row[0] for row in rows}

    @_guarded("read ledger")
    def unknown_since(self) -> datetime | None:
        """When the oldest item of unknown outcome was last touched, or None if there is none."""
        value = self._scalar("SELECT min(updated_at) FROM items WHERE state = 'unknown'")
        return None if value is None else datetime.fromisoformat(str(value).replace("Z", "+00:00"))

    @_guarded("read ledger")
    def outstanding_job_ids(self, limit: int, after_rowid: int = 0) -> list[tuple[int, str]]:
        """(rowid, job_id) of submitted items after `after_rowid`, to page through them."""
        rows = self._conn.execute(
            "SELECT rowid, job_id FROM items WHERE state = 'submitted' AND rowid > ? "
            "ORDER BY rowid LIMIT ?",
            (after_rowid, limit),
        )
        return [(int(rowid), str(job_id)) for rowid, job_id in rows]

    @_guarded("read ledger")
    def level_counts(self, state: str) -> dict[int, int]:
        sql = "SELECT job_level, count(*) FROM items WHERE state = ? GROUP BY job_level"
        return {int(level): int(count) for level, count in self._conn.execute(sql, (state,))}

    def iter_items(self, states: Collection[str] | None = None) -> Generator[ItemRow]:
        """Every row in insertion order, streamed; only those in `states` when given."""
        params = () if states is None else tuple(states)
        where = "" if states is None else f"WHERE state IN ({', '.join('?' * len(params))})"
        with _translating(self.path, "read ledger"):
            cursor = self._conn.execute(
                f"SELECT {_ROW_COLUMNS} FROM items {where} ORDER BY rowid", params
            )
            try:
                for row in cursor:
                    extra = dict(zip(_ROW_EXTRAS, row[11:], strict=True))
                    extra["state"] = State(extra["state"])
                    extra["result"] = None if row[16] is None else json.loads(row[16])
                    yield ItemRow(*row[:11], **extra)
            finally:
                cursor.close()

    # Runs and metadata

    @_guarded("write ledger")
    def start_run(self, pid: int, host: str, args: Mapping[str, Any]) -> int:
        cursor = self._write(
            "INSERT INTO runs (started_at, pid, host, args) VALUES (?, ?, ?, ?)",
            (self._now(), pid, host, _json(args)),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    @_guarded("write ledger")
    def finish_run(self, run_id: int, exit_code: int, counts: Mapping[str, int]) -> None:
        self._write(
            "UPDATE runs SET finished_at = ?, exit_code = ?, counts = ? WHERE run_id = ?",
            (self._now(), exit_code, _json(counts), run_id),
        )

    @_guarded("read ledger")
    def last_run(self) -> Run | None:
        row = self._conn.execute(
            "SELECT run_id, started_at, finished_at, pid, host, args, exit_code, counts "
            "FROM runs ORDER BY run_id DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        run_id, started_at, finished_at, pid, host, args, exit_code, counts = row
        return Run(
            run_id, started_at, finished_at, pid, host, json.loads(args), exit_code,
            None if counts is None else json.loads(counts),
        )  # fmt: skip

    @_guarded("read ledger")
    def lock_holder(self) -> LockInfo | None:
        """The run holding this ledger, judged from the lock file without touching the lock."""
        try:
            holder = LockInfo.parse(Path(f"{self.path}.lock").read_bytes())
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

    @_guarded("read ledger")
    def meta_get(self, key: str) -> str | None:
        value = self._scalar("SELECT value FROM meta WHERE key = ?", (key,))
        return None if value is None else str(value)

    @_guarded("write ledger")
    def meta_set(self, key: str, value: str) -> None:
        self._write(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @_guarded("read ledger")
    def integrity_check(self) -> str:
        rows = self._conn.execute("PRAGMA integrity_check").fetchall()
        return "\n".join(str(row[0]) for row in rows)


def _final_updates(rows: Iterable[JobUpdate]) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """The final states among `rows`, as parameters for record_states."""
    for update in rows:
        state = _CI_STATES.get(update.state, SUBMITTED)
        if state in FINAL_STATES:
            finished = None if update.finished_at is None else _iso(update.finished_at)
            result = _json(update.result)
            yield (
                state.value,
                (update.job_id, state.value, update.code, update.message, result, finished),
            )


def _insert_new(chunk: list[ItemRecord], now: str) -> Iterator[tuple[str, list[Any]]]:
    """INSERTs for `chunk`, 50 rows each, that bind only the columns whose values vary in it.

    Most columns of a load hold one value throughout (buckets, region, often the level, the
    NULLs a CSV leaves), and the sqlite3 module spends about as long binding a parameter as
    SQLite takes to store it: literals for those, and many rows per statement, make a row
    cost a third of an `executemany` of every column.
    """
    columns = list(zip(*chunk, strict=True))
    values: list[str] = []
    varying: list[tuple[Any, ...]] = []
    for column in columns:
        literal = _literal(column[0]) if column.count(column[0]) == len(column) else None
        if literal is None:
            values.append("?")
            varying.append(column)
        else:
            values.append(literal)
    stamp = _literal(now)
    row = f"({', '.join(values)}, 'pending', {stamp}, {stamp})"
    head = f"INSERT INTO items ({_ITEM_COLUMNS}, state, created_at, updated_at) VALUES "
    rows = list(zip(*varying, strict=True)) if varying else [()] * len(chunk)
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        part = rows[start : start + _ROWS_PER_INSERT]
        yield head + ", ".join([row] * len(part)), list(itertools.chain.from_iterable(part))


def _literal(value: object) -> str | None:
    """`value` as an SQL literal, or None where it must stay a bound parameter."""
    if value is None:
        return "NULL"
    if type(value) is int:
        return str(value)
    if type(value) is str and "\x00" not in value:
        return "'" + value.replace("'", "''") + "'"
    return None


class Loader:
    """Hands planned items to the ledger during `Ledger.loading()`."""

    def __init__(self, ledger: Ledger, *, refresh_changed: bool, bulk: bool) -> None:
        self._ledger = ledger
        self._bulk = bulk
        self._insert = _UPSERT_CHANGED if refresh_changed else _INSERT_ITEM
        self._pending: list[ItemRecord] = []
        self._now = ledger._now()
        self.added = 0

    def add(self, records: Iterable[ItemRecord]) -> None:
        with _translating(self._ledger.path, "write ledger"):
            if self._bulk:
                conn = self._ledger.connection
                for chunk in _chunks(records, _CHUNK):
                    for sql, params in _insert_new(chunk, self._now):
                        conn.execute(sql, params)
                return
            self._pending.extend(records)
            while len(self._pending) >= _CHUNK * _CHUNKS_PER_COMMIT:
                group = self._pending[: _CHUNK * _CHUNKS_PER_COMMIT]
                del self._pending[: _CHUNK * _CHUNKS_PER_COMMIT]
                self.added += self._ledger._add_group(group, self._insert)

    def flush(self) -> None:
        if self._pending:
            with _translating(self._ledger.path, "write ledger"):
                group, self._pending = self._pending, []
                self.added += self._ledger._add_group(group, self._insert)
