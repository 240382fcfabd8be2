"""An item's moves through the states, each logged in its history."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from orchestrator.ledger import FINAL_STATES, JobUpdate, Ledger, Outcomes, State
from tests.ledger.support import Clock, history, item, items, state_of, submit


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


def test_outcomes_and_the_next_claim_are_written_in_one_transaction(ledger: Ledger) -> None:
    ledger.add_items(items(6))
    ledger.claim(4)
    outcomes = Outcomes(
        submitted=[("id-000000", "job-0")],
        failed=[("id-000001", "InvalidArgument", "bad rule")],
        unknown=["id-000002"],
        released=["id-000003"],
    )
    statements: list[str] = []
    ledger.connection.set_trace_callback(statements.append)
    claimed = ledger.record_outcomes(outcomes, claim=4)
    ledger.connection.set_trace_callback(None)
    assert [s for s in statements if s in ("BEGIN IMMEDIATE", "COMMIT")] == [
        "BEGIN IMMEDIATE",
        "COMMIT",
    ]
    # Claimed before the release: an item given back is not taken again by the same call.
    assert [c.item_id for c in claimed] == ["id-000004", "id-000005"]
    assert [state_of(ledger, f"id-00000{n}") for n in range(6)] == [
        "submitted", "failed", "unknown", "pending", "submitting", "submitting"
    ]  # fmt: skip
    assert history(ledger, "id-000000") == [(1, "job-0", "submitted", None)]
    assert history(ledger, "id-000001") == [(1, None, "failed", "InvalidArgument")]
    assert history(ledger, "id-000002") == [(1, None, "unknown", None)]
    assert history(ledger, "id-000003") == [(1, None, "released", None)]


def test_an_outcome_for_an_item_no_longer_in_flight_changes_nothing(ledger: Ledger) -> None:
    ledger.add_items(items(2))
    submit(ledger, 1)
    late = Outcomes(unknown=["id-000000"], released=["id-000000"], submitted=[("id-000001", "j")])
    assert ledger.record_outcomes(late) == []
    assert state_of(ledger, "id-000000") == "submitted"
    assert state_of(ledger, "id-000001") == "pending"  # never claimed
    assert history(ledger, "id-000000") == [(1, "job-id-000000", "submitted", None)]


def test_each_move_finds_its_rows_by_their_key_not_by_their_state(ledger: Ledger) -> None:
    from orchestrator.ledger import transitions

    for move, index in [
        (transitions._TO_SUBMITTED, "items_id"),
        (transitions._TO_FAILED, "items_id"),
        (transitions._TO_UNKNOWN, "items_id"),
        (transitions._TO_PENDING, "items_id"),
        (transitions._TO_FINAL, "items_job_id"),
        (transitions._TO_FINAL_BY_ROW, "INTEGER PRIMARY KEY"),
    ]:
        plan = ledger.connection.execute(f"EXPLAIN QUERY PLAN {move.find}", ("[]",)).fetchall()
        assert f"USING {'' if move.key == 'rowid' else 'INDEX '}{index} " in " ".join(
            str(row[-1]) for row in plan
        )


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


@pytest.mark.parametrize("state", list(State))
def test_record_states_ends_an_item_only_in_a_final_state(ledger: Ledger, state: State) -> None:
    ledger.add_items(items(1))
    submit(ledger, 1)
    changed = ledger.record_states([JobUpdate("job-id-000000", state)])
    expected = state if state in FINAL_STATES else State.SUBMITTED
    assert (changed, state_of(ledger, "id-000000")) == (int(state in FINAL_STATES), expected)


def test_record_states_keeps_the_result_and_ci_end_time(ledger: Ledger, clock: Clock) -> None:
    ledger.add_items(items(2))
    submit(ledger, 2)
    clock.advance(30)
    end = datetime(2024, 5, 1, 18, 0, 10, tzinfo=timezone(timedelta(hours=8)))
    result = {"ProcessResult": {"ObjectName": "out/000000.webp", "Size": "2048"}}
    changed = ledger.record_states(
        [
            JobUpdate("job-id-000000", State.SUCCESS, result=result, finished_at=end),
            JobUpdate("job-id-000001", State.FAILED, "InternalError", "boom"),
        ]
    )
    assert changed == 2
    done, failed = ledger.iter_items()
    assert (done.result, done.finished_at) == (result, "2024-05-01T10:00:10.000Z")
    assert (failed.code, failed.message) == ("InternalError", "boom")
    assert failed.finished_at == "2024-05-01T10:00:30.000Z"
    assert history(ledger, "id-000001")[-1] == (1, "job-id-000001", "failed", "InternalError")


def test_record_states_finds_an_update_by_its_row_only_while_the_row_has_that_job(
    ledger: Ledger,
) -> None:
    ledger.add_items(items(2))
    submit(ledger, 2)
    assert ledger.record_states([JobUpdate("job-id-000000", State.SUCCESS, row=2)]) == 0
    assert ledger.record_states([JobUpdate("job-id-000001", State.FAILED, "X", "boom", row=2)]) == 1
    assert ledger.record_states([JobUpdate("job-id-000000", State.SUCCESS, row=1)]) == 1
    assert [state_of(ledger, f"id-{n:06d}") for n in range(2)] == ["success", "failed"]
    assert history(ledger, "id-000001")[-1] == (1, "job-id-000001", "failed", "X")


def test_record_states_never_moves_a_final_row_back(ledger: Ledger) -> None:
    ledger.add_items(items(1))
    submit(ledger, 1)
    ledger.record_states([JobUpdate("job-id-000000", State.SUCCESS)])
    assert ledger.record_states([JobUpdate("job-id-000000", State.FAILED, "X", "late")]) == 0
    ledger.record_states([JobUpdate("job-id-000000", State.SUBMITTED)])
    ledger.mark_failed([("id-000000", "X", "late")])
    ledger.release(["id-000000"])
    (row,) = ledger.iter_items()
    assert (row.state, row.code) == (State.SUCCESS, None)
    assert [entry[2] for entry in history(ledger, "id-000000")] == ["submitted", "success"]


def test_retry_failed_keeps_attempts_and_history(ledger: Ledger) -> None:
    ledger.add_items(items(2))
    submit(ledger, 2)
    ledger.record_states([JobUpdate("job-id-000000", State.FAILED, "InternalError", "boom")])
    ledger.record_states([JobUpdate("job-id-000001", State.SUCCESS)])
    assert ledger.retry_failed() == 1
    (row,) = ledger.iter_items(["pending"])
    assert (row.item_id, row.attempts, row.job_id, row.code, row.message) == (
        "id-000000", 1, None, None, None,
    )  # fmt: skip
    (again,) = ledger.claim(5)
    assert again.attempts == 2
    assert [entry[2] for entry in history(ledger, "id-000000")] == ["submitted", "failed"]


def test_claims_limited_to_some_jobs_take_theirs_in_level_order_and_released_ones_again(
    ledger: Ledger,
) -> None:
    jobs = ["kept", "gone", None]  # None: the unnamed job, `default`
    ledger.add_items(dataclasses.replace(item(n, level=n % 2), job=jobs[n % 3]) for n in range(30))
    wanted = {"kept", "default"}
    taken = [c.item_id for c in ledger.claim(4, wanted)]
    taken += [c.item_id for c in ledger.claim(4, wanted)]
    ledger.release(taken[:2])
    while batch := ledger.claim(3, wanted):
        taken += [c.item_id for c in batch]
    ours = [n for n in range(30) if n % 3 != 1]
    by_level = sorted(ours, key=lambda n: (-(n % 2), n))
    expected = [f"id-{n:06d}" for n in by_level]
    # The first two were released after the second claim, and claimed again first.
    assert taken == expected[:8] + expected[:2] + expected[8:]
    assert ledger.counts(wanted)["pending"] == 0
    assert ledger.pending_count() == 10  # the job no longer in the manifest keeps its items
