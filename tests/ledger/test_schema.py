"""The schema version and migrations: older ledgers open, newer ones are refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from orchestrator.exceptions import LedgerError
from orchestrator.ledger import SCHEMA_VERSION, Ledger
from orchestrator.ledger.schema import MIGRATIONS
from tests.ledger.support import item, items


def test_opening_records_the_schema_version_and_reopening_changes_nothing(path: Path) -> None:
    with Ledger.open(path) as ledger:
        ledger.add_items(items(3))
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    before = path.read_bytes()
    with Ledger.open(path) as ledger:
        assert ledger.total() == 3
    assert path.read_bytes() == before


def test_a_version_1_ledger_is_migrated_keeping_every_row_rowid_and_attempt(path: Path) -> None:
    path.parent.mkdir()
    with sqlite3.connect(path) as conn:
        for statement in MIGRATIONS[0].statements:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        for n in (7, 3, 5):  # rowids 1-3, not in id order
            conn.execute(
                "INSERT INTO items (item_id, bucket, key, output_bucket, output_region, "
                "output_key, job_level, state, created_at, updated_at, job_id, attempts) "
                "VALUES (?, 'src-1250000000', ?, 'dst-1250000000', 'ap-guangzhou', ?, 0, "
                "'submitted', 't', 't', ?, 1)",
                (f"id-{n:06d}", f"in/{n:06d}.jpg", f"out/{n:06d}.webp", f"job-{n}"),
            )
            conn.execute(
                "INSERT INTO attempts_log (item_id, attempt, job_id, outcome, at) "
                "VALUES (?, 1, ?, 'submitted', 't')",
                (f"id-{n:06d}", f"job-{n}"),
            )
    conn.close()
    with Ledger.open(path) as ledger:
        conn = ledger.connection
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        rows = conn.execute("SELECT rowid, item_id, job_id FROM items ORDER BY rowid").fetchall()
        assert rows == [
            (1, "id-000007", "job-7"),
            (2, "id-000003", "job-3"),
            (3, "id-000005", "job-5"),
        ]
        assert conn.execute("SELECT count(*) FROM attempts_log").fetchone()[0] == 3
        assert ledger.integrity_check() == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        # The id index is back: an item is added once, and its history follows it on delete.
        assert ledger.add_items([item(3), item(9)]) == 1
        conn.execute("DELETE FROM items WHERE item_id = 'id-000003'")
        assert conn.execute("SELECT count(*) FROM attempts_log").fetchone()[0] == 2


def test_a_ledger_from_a_newer_picjobs_is_refused_and_left_untouched(path: Path) -> None:
    Ledger.open(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(LedgerError, match=f"schema version {SCHEMA_VERSION + 1} is newer"):
        Ledger.open(path)
    assert path.read_bytes() == before
