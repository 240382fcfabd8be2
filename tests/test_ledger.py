"""The SQLite ledger, on real files."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from orchestrator.exceptions import LedgerError, LockHeld, OutputCollision
from orchestrator.items import Item
from orchestrator.ledger import (
    _MIGRATIONS,
    FINAL_STATES,
    SCHEMA_VERSION,
    ClaimedItem,
    JobUpdate,
    Ledger,
    State,
)

T0 = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)


class Clock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def item(n: int, level: int = 0, output: str | None = None) -> Item:
    return Item(
        item_id=f"id-{n:06d}",
        bucket="src-1250000000",
        key=f"in/{n:06d}.jpg",
        output_bucket="dst-1250000000",
        output_region="ap-guangzhou",
        output_key=output or f"out/{n:06d}.webp",
        job_level=level,
        size=n,
    )


def items(count: int, start: int = 0) -> Iterator[Item]:
    return (item(n) for n in range(start, start + count))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "ledger.sqlite"


@pytest.fixture
def ledger(path: Path, clock: Clock) -> Iterator[Ledger]:
    with Ledger.open(path, clock=clock) as opened:
        yield opened


def state_of(ledger: Ledger, item_id: str) -> str:
    row = ledger.connection.execute("SELECT state FROM items WHERE item_id = ?", (item_id,))
    return str(row.fetchone()[0])


def history(ledger: Ledger, item_id: str) -> list[tuple[int, str | None, str, str | None]]:
    rows = ledger.connection.execute(
        "SELECT attempt, job_id, outcome, code FROM attempts_log WHERE item_id = ? ORDER BY rowid",
        (item_id,),
    )
    return [tuple(row) for row in rows]


def submit(ledger: Ledger, count: int) -> list[ClaimedItem]:
    claimed = ledger.claim(count)
    ledger.mark_submitted([(c.item_id, f"job-{c.item_id}") for c in claimed])
    return claimed


# Opening


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
        for statement in _MIGRATIONS[0].statements:
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


def test_a_bulk_load_keeps_an_item_listed_twice_once_in_first_seen_order(ledger: Ledger) -> None:
    assert ledger.add_items([item(2), item(1), item(2, level=1), item(0)]) == 3
    rows = ledger.connection.execute("SELECT item_id, job_level FROM items ORDER BY rowid")
    assert rows.fetchall() == [("id-000002", 0), ("id-000001", 0), ("id-000000", 0)]
    names = {row[0] for row in ledger.connection.execute("SELECT name FROM sqlite_master")}
    assert {"items_id", "items_output", "items_state_level"} <= names
    assert ledger.connection.execute("PRAGMA foreign_keys").fetchone()[0] == 1


@pytest.mark.parametrize("count", [1, 3])
def test_a_bulk_load_stores_every_value_exactly_whatever_it_contains(
    ledger: Ledger, count: int
) -> None:
    odd = Item(
        item_id="id-'; DROP TABLE items; --",
        bucket="src-1250000000",
        key="it's/a \x00 key/猫'.jpg",
        output_bucket="dst-1250000000",
        output_region="ap-guangzhou",
        output_key="out/''.webp",
        job_level=2,
        user_data="{'a': \"b\"}",
        etag='"e\'"',
        size=2**62,
        last_modified="2024-05-01T10:00:00Z",
    )
    batch = [odd] + [item(n) for n in range(count - 1)]
    assert ledger.add_items(batch) == count
    stored = {row.item_id: row for row in ledger.iter_items()}
    row = stored[odd.item_id]
    assert row.record() == odd.record()
    assert stored.keys() == {b.item_id for b in batch}


def test_count_final_of_another_ledger_counts_its_items_that_are_final_here(
    ledger: Ledger, tmp_path: Path
) -> None:
    ledger.add_items(items(5))
    submit(ledger, 3)
    ledger.record_states([JobUpdate(f"job-id-{n:06d}", "Success") for n in range(2)])
    with Ledger.open(tmp_path / "plan.sqlite") as plan:
        plan.add_items([item(1), item(2), item(4), item(9)])
        assert ledger.count_final_of(plan) == 1  # item 1; 0 is not planned, 2 still running
    attached = ledger.connection.execute("PRAGMA database_list").fetchall()
    assert "other" not in {name for _seq, name, _file in attached}


def test_a_bulk_load_of_uneven_chunks_stores_every_row_as_given(ledger: Ledger) -> None:
    batch = [
        Item(f"id-{n:06d}", "src-1250000000", f"in/{n}.jpg", "dst-1250000000", "ap-guangzhou",
             f"out/{n}.webp", n % 3, None if n % 7 else f"u{n}", None, n if n % 2 else None)
        for n in range(1234)
    ]  # fmt: skip
    assert ledger.add_items(batch) == 1234
    assert [row.record() for row in ledger.iter_items()] == [i.record() for i in batch]


def test_a_failed_bulk_load_leaves_the_empty_ledger_with_all_its_indexes(ledger: Ledger) -> None:
    with pytest.raises(OutputCollision):
        ledger.add_items([item(1), item(2, output="out/000001.webp")])
    names = {row[0] for row in ledger.connection.execute("SELECT name FROM sqlite_master")}
    assert {"items_id", "items_output", "items_state_level"} <= names
    assert ledger.total() == 0
    assert ledger.add_items(items(2)) == 2


def test_a_ledger_from_a_newer_picjobs_is_refused_and_left_untouched(path: Path) -> None:
    Ledger.open(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(LedgerError, match=f"schema version {SCHEMA_VERSION + 1} is newer"):
        Ledger.open(path)
    assert path.read_bytes() == before


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


def test_a_second_run_cannot_take_the_lock(path: Path) -> None:
    with Ledger.open(path) as first, Ledger.open(path) as second:
        first.lock()
        with pytest.raises(LockHeld, match=f"pid {os.getpid()}"):
            second.lock()
    with Ledger.open(path) as third:
        third.lock()


# Planning


def test_adding_items_returns_the_number_of_new_rows(ledger: Ledger) -> None:
    assert ledger.add_items(items(5)) == 5
    assert ledger.add_items(items(5, start=3)) == 3
    assert ledger.total() == 8


def test_re_adding_the_same_items_inserts_nothing(ledger: Ledger) -> None:
    ledger.add_items(items(10))
    submit(ledger, 2)
    assert ledger.add_items(items(10)) == 0
    assert ledger.counts()["pending"] == 8
    assert ledger.counts()["submitted"] == 2


def test_two_inputs_with_one_output_in_one_call_are_refused_naming_both_keys(
    ledger: Ledger,
) -> None:
    batch = [*items(1200), item(5000, output="out/000100.webp")]
    with pytest.raises(OutputCollision) as caught:
        ledger.add_items(batch)
    assert (caught.value.first_key, caught.value.second_key) == ("in/000100.jpg", "in/005000.jpg")
    assert caught.value.output == "dst-1250000000/out/000100.webp"
    assert ledger.total() == 0


def test_an_input_whose_output_is_already_in_the_ledger_is_refused_naming_both_keys(
    ledger: Ledger,
) -> None:
    ledger.add_items(items(3))
    with pytest.raises(OutputCollision) as caught:
        ledger.add_items([item(3), item(7, output="out/000001.webp"), item(4)])
    assert (caught.value.first_key, caught.value.second_key) == ("in/000001.jpg", "in/000007.jpg")
    assert ledger.total() == 3


def test_timestamps_are_utc_iso_8601_with_a_z(ledger: Ledger, clock: Clock) -> None:
    clock.now = datetime(2024, 5, 1, 18, 30, 15, 250000, tzinfo=timezone(timedelta(hours=8)))
    ledger.add_items(items(1))
    (row,) = ledger.iter_items()
    assert row.created_at == row.updated_at == "2024-05-01T10:30:15.250Z"


# Submission


def test_claim_takes_the_highest_level_first_then_insertion_order(
    ledger: Ledger, clock: Clock
) -> None:
    ledger.add_items([item(0, 0), item(1, 2), item(2, 1), item(3, 2), item(4, 0)])
    clock.advance(60)
    claimed = ledger.claim(4)
    assert [c.item_id for c in claimed] == ["id-000001", "id-000003", "id-000002", "id-000000"]
    assert all(c.attempts == 1 for c in claimed)
    assert claimed[0].key == "in/000001.jpg"
    assert claimed[0].job_level == 2
    assert ledger.counts()["submitting"] == 4
    (row,) = [r for r in ledger.iter_items() if r.item_id == "id-000001"]
    assert (row.state, row.attempts, row.updated_at) == (
        State.SUBMITTING,
        1,
        "2024-05-01T10:01:00.000Z",
    )


def test_a_claimed_item_is_not_claimed_again(ledger: Ledger) -> None:
    ledger.add_items(items(3))
    first = ledger.claim(2)
    second = ledger.claim(2)
    assert {c.item_id for c in first}.isdisjoint({c.item_id for c in second})
    assert len(second) == 1
    assert ledger.claim(2) == []


def test_the_claim_query_is_served_by_the_state_and_level_index(ledger: Ledger) -> None:
    plan = ledger.connection.execute(
        "EXPLAIN QUERY PLAN SELECT rowid FROM items WHERE state = 'pending' "
        "ORDER BY job_level DESC, rowid LIMIT 10"
    ).fetchall()
    details = " ".join(str(row[-1]) for row in plan)
    assert "items_state_level" in details
    assert "TEMP B-TREE" not in details


def test_mark_submitted_records_the_job_id_and_logs_the_attempt(ledger: Ledger) -> None:
    ledger.add_items(items(1))
    (claimed,) = ledger.claim(1)
    assert ledger.mark_submitted([(claimed.item_id, "job-1")]) == 1
    (row,) = ledger.iter_items()
    assert (row.state, row.job_id, row.submitted_at) == (State.SUBMITTED, "job-1", row.updated_at)
    assert history(ledger, claimed.item_id) == [(1, "job-1", "submitted", None)]
    assert ledger.outstanding_count() == 1


def test_recover_interrupted_turns_submitting_into_unknown(ledger: Ledger) -> None:
    ledger.add_items(items(4))
    submit(ledger, 1)
    ledger.claim(2)
    assert ledger.recover_interrupted() == 2
    counts = ledger.counts()
    assert (counts["unknown"], counts["submitted"], counts["pending"]) == (2, 1, 1)
    assert [c.item_id for c in ledger.unknown_items(10)] == ["id-000001", "id-000002"]
    assert history(ledger, "id-000001") == [(1, None, "unknown", None)]
    assert ledger.recover_interrupted() == 0


def test_an_unknown_item_is_adopted_when_its_job_is_found_remotely(ledger: Ledger) -> None:
    ledger.add_items(items(2))
    ledger.claim(2)
    ledger.mark_unknown(["id-000000", "id-000001"])
    assert ledger.adopt([("id-000000", "job-remote")]) == 1
    assert state_of(ledger, "id-000000") == "submitted"
    assert ledger.outstanding_job_ids(10) == [(1, "job-remote")]
    assert history(ledger, "id-000000")[-1] == (1, "job-remote", "adopted", None)


def test_a_released_item_is_pending_again_with_its_attempt_counted(ledger: Ledger) -> None:
    ledger.add_items(items(1))
    ledger.claim(1)
    assert ledger.release(["id-000000"]) == 1
    (again,) = ledger.claim(1)
    assert again.attempts == 2
    assert history(ledger, "id-000000") == [(1, None, "released", None)]


def test_mark_failed_ends_an_item_with_ci_code_and_message(ledger: Ledger, clock: Clock) -> None:
    ledger.add_items(items(1))
    ledger.claim(1)
    clock.advance(5)
    assert ledger.mark_failed([("id-000000", "InvalidArgument", "bad rule")]) == 1
    (row,) = ledger.iter_items()
    assert (row.state, row.code, row.message) == (State.FAILED, "InvalidArgument", "bad rule")
    assert row.finished_at == "2024-05-01T10:00:05.000Z"
    assert history(ledger, "id-000000") == [(1, None, "failed", "InvalidArgument")]


@pytest.mark.parametrize(
    ("ci_state", "state"),
    [
        ("Success", "success"),
        ("Failed", "failed"),
        ("Cancel", "cancelled"),
        ("Submitted", "submitted"),
        ("Running", "submitted"),
        ("Pause", "submitted"),
        ("SomethingNew", "submitted"),
    ],
)
def test_record_states_maps_ci_states(ledger: Ledger, ci_state: str, state: str) -> None:
    ledger.add_items(items(1))
    submit(ledger, 1)
    ledger.record_states([JobUpdate("job-id-000000", ci_state)])
    assert state_of(ledger, "id-000000") == state


def test_record_states_keeps_the_result_and_ci_end_time(ledger: Ledger, clock: Clock) -> None:
    ledger.add_items(items(2))
    submit(ledger, 2)
    clock.advance(30)
    end = datetime(2024, 5, 1, 18, 0, 10, tzinfo=timezone(timedelta(hours=8)))
    result = {"ProcessResult": {"ObjectName": "out/000000.webp", "Size": "2048"}}
    changed = ledger.record_states(
        [
            JobUpdate("job-id-000000", "Success", result=result, finished_at=end),
            JobUpdate("job-id-000001", "Failed", "InternalError", "boom"),
        ]
    )
    assert changed == 2
    done, failed = ledger.iter_items()
    assert (done.result, done.finished_at) == (result, "2024-05-01T10:00:10.000Z")
    assert (failed.code, failed.message) == ("InternalError", "boom")
    assert failed.finished_at == "2024-05-01T10:00:30.000Z"
    assert history(ledger, "id-000001")[-1] == (1, "job-id-000001", "failed", "InternalError")


def test_record_states_never_moves_a_final_row_back(ledger: Ledger) -> None:
    ledger.add_items(items(1))
    submit(ledger, 1)
    ledger.record_states([JobUpdate("job-id-000000", "Success")])
    assert ledger.record_states([JobUpdate("job-id-000000", "Failed", "X", "late")]) == 0
    ledger.record_states([JobUpdate("job-id-000000", "Running")])
    ledger.mark_failed([("id-000000", "X", "late")])
    ledger.release(["id-000000"])
    (row,) = ledger.iter_items()
    assert (row.state, row.code) == (State.SUCCESS, None)
    assert [entry[2] for entry in history(ledger, "id-000000")] == ["submitted", "success"]


def test_retry_failed_keeps_attempts_and_history(ledger: Ledger) -> None:
    ledger.add_items(items(2))
    submit(ledger, 2)
    ledger.record_states([JobUpdate("job-id-000000", "Failed", "InternalError", "boom")])
    ledger.record_states([JobUpdate("job-id-000001", "Success")])
    assert ledger.retry_failed() == 1
    (row,) = ledger.iter_items(["pending"])
    assert (row.item_id, row.attempts, row.job_id, row.code, row.message) == (
        "id-000000", 1, None, None, None,
    )  # fmt: skip
    (again,) = ledger.claim(5)
    assert again.attempts == 2
    assert [entry[2] for entry in history(ledger, "id-000000")] == ["submitted", "failed"]


# Transactions


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


# Queries


def test_counts_include_every_state_with_zeros(ledger: Ledger) -> None:
    assert ledger.counts() == dict.fromkeys([s.value for s in State], 0)
    ledger.add_items(items(3))
    submit(ledger, 1)
    assert ledger.counts() == {
        "pending": 2, "submitting": 0, "unknown": 0, "submitted": 1,
        "success": 0, "failed": 0, "cancelled": 0,
    }  # fmt: skip
    assert (ledger.total(), ledger.pending_count(), ledger.outstanding_count()) == (3, 2, 1)
    assert sorted(FINAL_STATES) == ["cancelled", "failed", "success"]


def test_outstanding_job_ids_are_paged_by_rowid(ledger: Ledger) -> None:
    ledger.add_items(items(5))
    submit(ledger, 5)
    ledger.record_states([JobUpdate("job-id-000001", "Success")])
    first = ledger.outstanding_job_ids(2)
    assert first == [(1, "job-id-000000"), (3, "job-id-000002")]
    assert ledger.outstanding_job_ids(2, after_rowid=first[-1][0]) == [
        (4, "job-id-000003"),
        (5, "job-id-000004"),
    ]
    assert ledger.outstanding_job_ids(2, after_rowid=5) == []


def test_level_counts_group_one_state_by_job_level(ledger: Ledger) -> None:
    ledger.add_items([item(0, 2), item(1, 2), item(2, 0), item(3, 1)])
    ledger.claim(1)
    assert ledger.level_counts("pending") == {2: 1, 1: 1, 0: 1}
    assert ledger.level_counts("submitting") == {2: 1}
    assert ledger.level_counts("failed") == {}


def test_iter_items_streams_every_column_filtered_by_state(ledger: Ledger) -> None:
    ledger.add_items([*items(3), Item("x", "b", "k", "ob", "r", "o", 1, "ud", "etag", 7, "lm")])
    submit(ledger, 1)
    assert [r.item_id for r in ledger.iter_items()] == ["id-000000", "id-000001", "id-000002", "x"]
    assert [r.item_id for r in ledger.iter_items(["submitted"])] == ["x"]
    assert list(ledger.iter_items([])) == []
    (row,) = ledger.iter_items(["submitted"])
    assert (row.user_data, row.etag, row.size, row.last_modified) == ("ud", "etag", 7, "lm")
    assert (row.job_id, row.attempts, row.result, row.finished_at) == ("job-x", 1, None, None)


# Runs, metadata, health


def test_a_run_is_recorded_from_start_to_finish(ledger: Ledger, clock: Clock) -> None:
    assert ledger.last_run() is None
    run_id = ledger.start_run(4242, "host-a", {"manifest": "demo.toml", "wait": True})
    clock.advance(90)
    ledger.finish_run(run_id, 1, {"success": 9, "failed": 1})
    run = ledger.last_run()
    assert run is not None
    assert (run.run_id, run.pid, run.host, run.exit_code) == (run_id, 4242, "host-a", 1)
    assert run.args == {"manifest": "demo.toml", "wait": True}
    assert run.counts == {"success": 9, "failed": 1}
    assert (run.started_at, run.finished_at) == (
        "2024-05-01T10:00:00.000Z",
        "2024-05-01T10:01:30.000Z",
    )
    assert ledger.start_run(4243, "host-b", {}) == run_id + 1


def test_meta_values_are_stored_and_replaced(ledger: Ledger) -> None:
    assert ledger.meta_get("manifest") is None
    ledger.meta_set("manifest", "a")
    ledger.meta_set("manifest", "b")
    assert ledger.meta_get("manifest") == "b"


def test_integrity_check_says_ok(ledger: Ledger) -> None:
    ledger.add_items(items(10))
    assert ledger.integrity_check() == "ok"


def test_a_hundred_thousand_items_round_trip(ledger: Ledger) -> None:
    assert ledger.add_items(items(100_000)) == 100_000
    assert ledger.add_items(items(100_000)) == 0
    assert ledger.total() == ledger.pending_count() == 100_000
    count, last = 0, ""
    for row in ledger.iter_items():
        count, last = count + 1, row.key
    assert (count, last) == (100_000, "in/099999.jpg")
    assert [c.item_id for c in ledger.claim(2)] == ["id-000000", "id-000001"]
