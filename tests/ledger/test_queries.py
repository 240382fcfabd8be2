"""Reading the ledger: counts, pages of outstanding jobs, streamed rows."""

from __future__ import annotations

from pathlib import Path

from orchestrator.items import Item
from orchestrator.ledger import FINAL_STATES, JobUpdate, Ledger, State
from tests.ledger.support import item, items, submit


def test_count_final_of_another_ledger_counts_its_items_that_are_final_here(
    ledger: Ledger, tmp_path: Path
) -> None:
    ledger.add_items(items(5))
    submit(ledger, 3)
    ledger.record_states([JobUpdate(f"job-id-{n:06d}", State.SUCCESS) for n in range(2)])
    with Ledger.open(tmp_path / "plan.sqlite") as plan:
        plan.add_items([item(1), item(2), item(4), item(9)])
        assert ledger.count_final_of(plan) == 1  # item 1; 0 is not planned, 2 still running
    attached = ledger.connection.execute("PRAGMA database_list").fetchall()
    assert "other" not in {name for _seq, name, _file in attached}


def test_counts_include_every_state_with_zeros(ledger: Ledger) -> None:
    assert ledger.counts() == dict.fromkeys([s.value for s in State], 0)
    ledger.add_items(items(3))
    submit(ledger, 1)
    assert ledger.counts() == {
        "pending": 2, "submitting": 0, "unknown": 0, "submitted": 1,
        "success": 0, "failed": 0, "cancelled": 0, "skipped": 0,
    }  # fmt: skip
    assert (ledger.total(), ledger.pending_count(), ledger.outstanding_count()) == (3, 2, 1)
    assert sorted(FINAL_STATES) == ["cancelled", "failed", "skipped", "success"]


def test_outstanding_job_ids_are_paged_by_rowid(ledger: Ledger) -> None:
    ledger.add_items(items(5))
    submit(ledger, 5)
    ledger.record_states([JobUpdate("job-id-000001", State.SUCCESS)])
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
