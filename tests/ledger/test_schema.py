"""The schema version and migrations: older ledgers open, newer ones are refused."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from orchestrator.exceptions import LedgerError
from orchestrator.ledger import SCHEMA_VERSION, Ledger, State
from orchestrator.ledger.schema import MIGRATIONS
from tests.ledger.support import item, items


def test_opening_records_the_schema_version_and_reopening_changes_nothing(path: Path) -> None:
    with Ledger.open(path) as ledger:
        ledger.add_items(items(3))
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
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
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
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


# Written by picjobs at 1a0396d (schema 2): `picjobs run` over the demo bucket, all 8 done.
DEMO = Path(__file__).parent.parent / "data" / "ledger-v2" / "demo.sqlite"
DEMO_IDS = [
    "a567e0ad3c96cf97b4e1cd94060722c6",
    "674a4862464f83b312ad8e8cb94f9c9d",
    "3d14581d3ae0cf67604d04099f7bd1f6",
    "08be9a401fb391f94c5c2c454eb80fa7",
    "23d6759a2f3bcf00cc2a715f93e9e981",
    "d111dd45049580ce95d78d38003b73c4",
    "f4ab9e4174cae306dc566691253bf680",
    "46b638ece2af592c5a49fca7dd4be692",
]


def test_a_ledger_written_before_the_package_split_is_read_with_its_counts_and_ids(
    tmp_path: Path,
) -> None:
    path = tmp_path / "demo.sqlite"
    shutil.copyfile(DEMO, path)
    with Ledger.open(path) as ledger:
        assert ledger.total() == 8
        assert ledger.counts() == {**dict.fromkeys(State, 0), State.SUCCESS: 8}
        rows = list(ledger.iter_items())
        assert [row.item_id for row in rows] == DEMO_IDS
        assert rows[5].key == "photos/2025/花园.jpg"
        assert {row.state for row in rows} == {State.SUCCESS}
        assert all(row.finished_at is not None and row.job_id for row in rows)
        run = ledger.last_run()
        assert run is not None
        before_skipped = {s: n for s, n in ledger.counts().items() if s != State.SKIPPED}
        assert (run.run_id, run.exit_code, run.counts) == (1, 0, before_skipped)
        assert ledger.meta_get("last_success_at") == "2026-11-30T19:25:22Z"
        assert ledger.claim(10) == []
        assert ledger.integrity_check() == "ok"


def test_a_ledger_written_before_the_package_split_takes_new_items_and_runs(
    tmp_path: Path,
) -> None:
    path = tmp_path / "demo.sqlite"
    shutil.copyfile(DEMO, path)
    with Ledger.open(path) as ledger:
        assert ledger.add_items(items(2)) == 2
        assert [c.item_id for c in ledger.claim(5)] == ["id-000000", "id-000001"]
        assert ledger.start_run(1, "host", {}) == 2
    with Ledger.open(path) as reopened:
        assert reopened.counts()[State.SUBMITTING] == 2
        assert reopened.total() == 10


def test_a_version_2_ledger_gains_the_job_column_and_the_skipped_state(tmp_path: Path) -> None:
    fixture = Path(__file__).parents[1] / "data" / "ledger-v2" / "demo.sqlite"
    path = tmp_path / "demo.sqlite"
    path.write_bytes(fixture.read_bytes())
    with Ledger.open(path) as ledger:
        conn = ledger.connection
        columns = [row[1] for row in conn.execute("PRAGMA table_info(items)")]
        assert columns[-1] == "job"
        assert conn.execute("SELECT count(*) FROM items WHERE job IS NULL").fetchone()[0] == 8
        assert ledger.counts()[State.SUCCESS] == 8
        assert ledger.counts()[State.SKIPPED] == 0
        conn.execute("UPDATE items SET state = 'skipped' WHERE rowid = 1")
        assert ledger.integrity_check() == "ok"
