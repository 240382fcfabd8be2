"""The ledger file: its tables and indexes, their numbered migrations, and how a file is opened.

The DDL below is history: a migration that has shipped is never edited, so its state words
stay the literals it shipped with (they are `State`'s values), and the next change is a new one.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from orchestrator.ledger.errors import ledger_error

__all__ = [
    "BULK_INDEXES",
    "ITEM_COLUMNS",
    "MIGRATIONS",
    "ROW_COLUMNS",
    "ROW_EXTRAS",
    "SCHEMA_VERSION",
    "Migration",
    "encode_json",
    "foreign_keys_off",
    "migrate",
    "prepare_file",
    "user_version",
]

_SQLITE_MAGIC: Final = b"SQLite format 3\x00"
ITEM_COLUMNS: Final = (
    "item_id, bucket, key, output_bucket, output_region, output_key, job_level, user_data, "
    "etag, size, last_modified, job"
)
ROW_EXTRAS: Final = (
    "state", "job_id", "attempts", "code", "message", "result",
    "created_at", "updated_at", "submitted_at", "finished_at",
)  # fmt: skip
ROW_COLUMNS: Final = f"{ITEM_COLUMNS}, {', '.join(ROW_EXTRAS)}"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


# Applied in order, each in one transaction with its `PRAGMA user_version`. Never edit one that
# has shipped: add the next.
MIGRATIONS: Final = (
    Migration(
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
    Migration(
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
    Migration(
        3,
        "the job an item belongs to (several outputs per object), and the skipped state",
        (
            """CREATE TABLE items_v3 (
                item_id TEXT NOT NULL, bucket TEXT NOT NULL, key TEXT NOT NULL,
                output_bucket TEXT NOT NULL, output_region TEXT NOT NULL, output_key TEXT NOT NULL,
                job_level INTEGER NOT NULL, user_data TEXT, etag TEXT, size INTEGER,
                last_modified TEXT,
                state TEXT NOT NULL CHECK (state IN ('pending', 'submitting', 'unknown',
                    'submitted', 'success', 'failed', 'cancelled', 'skipped')),
                job_id TEXT, attempts INTEGER NOT NULL DEFAULT 0, code TEXT, message TEXT,
                result TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
                submitted_at TEXT, finished_at TEXT, job TEXT)""",
            "INSERT INTO items_v3 (rowid, item_id, bucket, key, output_bucket, output_region, "
            "output_key, job_level, user_data, etag, size, last_modified, state, job_id, "
            "attempts, code, message, result, created_at, updated_at, submitted_at, finished_at) "
            "SELECT rowid, item_id, bucket, key, output_bucket, output_region, output_key, "
            "job_level, user_data, etag, size, last_modified, state, job_id, attempts, code, "
            "message, result, created_at, updated_at, submitted_at, finished_at FROM items",
            "DROP TABLE items",
            "ALTER TABLE items_v3 RENAME TO items",
            "CREATE UNIQUE INDEX items_id ON items (item_id)",
            "CREATE UNIQUE INDEX items_output ON items (output_bucket, output_key)",
            "CREATE INDEX items_state_level ON items (state, job_level DESC)",
            "CREATE INDEX items_job_id ON items (job_id) WHERE job_id IS NOT NULL",
            "CREATE INDEX items_outstanding ON items (state) WHERE state = 'submitted'",
        ),
    ),
    Migration(
        4,
        "the attempt log keyed by its item's row, which claims number in order",
        (
            # `row` names the rowid, so that VACUUM keeps it: the log refers to items by it.
            """CREATE TABLE items_v4 (
                row INTEGER PRIMARY KEY,
                item_id TEXT NOT NULL, bucket TEXT NOT NULL, key TEXT NOT NULL,
                output_bucket TEXT NOT NULL, output_region TEXT NOT NULL, output_key TEXT NOT NULL,
                job_level INTEGER NOT NULL, user_data TEXT, etag TEXT, size INTEGER,
                last_modified TEXT,
                state TEXT NOT NULL CHECK (state IN ('pending', 'submitting', 'unknown',
                    'submitted', 'success', 'failed', 'cancelled', 'skipped')),
                job_id TEXT, attempts INTEGER NOT NULL DEFAULT 0, code TEXT, message TEXT,
                result TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
                submitted_at TEXT, finished_at TEXT, job TEXT)""",
            "INSERT INTO items_v4 (row, item_id, bucket, key, output_bucket, output_region, "
            "output_key, job_level, user_data, etag, size, last_modified, state, job_id, "
            "attempts, code, message, result, created_at, updated_at, submitted_at, finished_at, "
            "job) "
            "SELECT rowid, item_id, bucket, key, output_bucket, output_region, output_key, "
            "job_level, user_data, etag, size, last_modified, state, job_id, attempts, code, "
            "message, result, created_at, updated_at, submitted_at, finished_at, job FROM items",
            # The log's item_id stays, for whoever reads the file; `item` is what it is found by.
            # A log row of no item (written with foreign keys off) has no row to be keyed by.
            """CREATE TABLE attempts_log_v4 (
                item INTEGER NOT NULL REFERENCES items_v4 (row) ON DELETE CASCADE,
                item_id TEXT NOT NULL, attempt INTEGER NOT NULL, job_id TEXT,
                outcome TEXT NOT NULL, code TEXT, message TEXT, at TEXT NOT NULL)""",
            "INSERT INTO attempts_log_v4 (rowid, item, item_id, attempt, job_id, outcome, code, "
            "message, at) SELECT a.rowid, i.rowid, a.item_id, a.attempt, a.job_id, a.outcome, "
            "a.code, a.message, a.at FROM attempts_log AS a JOIN items AS i USING (item_id) "
            "ORDER BY a.rowid",
            "DROP TABLE attempts_log",
            "DROP TABLE items",
            "ALTER TABLE items_v4 RENAME TO items",
            "ALTER TABLE attempts_log_v4 RENAME TO attempts_log",
            "CREATE UNIQUE INDEX items_id ON items (item_id)",
            "CREATE UNIQUE INDEX items_output ON items (output_bucket, output_key)",
            "CREATE INDEX items_state_level ON items (state, job_level DESC)",
            "CREATE INDEX items_job_id ON items (job_id) WHERE job_id IS NOT NULL",
            "CREATE INDEX items_outstanding ON items (state) WHERE state = 'submitted'",
            "CREATE INDEX attempts_log_item ON attempts_log (item, attempt)",
        ),
    ),
)
# The indexes a bulk load into an empty items table drops, then builds by sorting once: a
# million inserts into a random-order index cost several times that. Unique ones first, in the
# order their violations are resolved.
BULK_INDEXES: Final = (
    ("items_id", "CREATE UNIQUE INDEX items_id ON items (item_id)"),
    ("items_output", "CREATE UNIQUE INDEX items_output ON items (output_bucket, output_key)"),
    ("items_state_level", "CREATE INDEX items_state_level ON items (state, job_level DESC)"),
)
SCHEMA_VERSION: Final = MIGRATIONS[-1].version


def prepare_file(path: Path) -> None:
    """Create the file private to its owner before SQLite does, and refuse a non-database."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:  # a regular file where a folder should be
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), exc.filename) from exc
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        header = os.pread(fd, len(_SQLITE_MAGIC), 0)
        if header and header != _SQLITE_MAGIC:
            raise ledger_error(path, "open ledger", "not a SQLite database")
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    # SQLite gives new -wal and -shm files the main file's mode; existing ones need tightening.
    for suffix in ("-wal", "-shm"):
        sidecar = path.with_name(path.name + suffix)
        if sidecar.exists() and sidecar.stat().st_mode & 0o077:
            sidecar.chmod(0o600)


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(
    conn: sqlite3.Connection, path: Path, atomic: Callable[[], AbstractContextManager[object]]
) -> None:
    """Apply the migrations this file lacks, each in one `atomic()` transaction."""
    for migration in MIGRATIONS:
        if user_version(conn) >= migration.version:
            continue
        # Rebuilding a table drops the old one, which with foreign keys enforced would
        # cascade into attempts_log; SQLite's documented procedure turns them off.
        with foreign_keys_off(conn), atomic():
            # Another process may have migrated while we waited for the write lock.
            if user_version(conn) < migration.version:
                for statement in migration.statements:
                    conn.execute(statement)
                if conn.execute("PRAGMA foreign_key_check").fetchone() is not None:
                    raise ledger_error(path, "migrate ledger", "foreign key check failed")
                conn.execute(f"PRAGMA user_version = {migration.version}")


@contextmanager
def foreign_keys_off(conn: sqlite3.Connection) -> Iterator[None]:
    conn.execute("PRAGMA foreign_keys = OFF")  # a no-op inside a transaction
    try:
        yield
    finally:
        conn.execute("PRAGMA foreign_keys = ON")


# One encoder for every call: json.dumps with options builds a new one each time, which cost
# as much as encoding a job's result.
_JSON: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def encode_json(value: Mapping[str, Any] | None) -> str | None:
    """How the JSON columns (result, args, counts) are stored: compact, keys sorted."""
    if value is None:
        return None
    return _JSON.encode(value)
