"""The reconciler against a CI in memory: what it adopts, what it sends back to pending."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from orchestrator.cloud.models import JobState
from orchestrator.cloud.retry import Retrier, RetryPolicy
from orchestrator.engine.reconcile import Reconciler
from orchestrator.ledger import Ledger, State
from tests.engine.fakes import T0, FakeCI, item, open_ledger, unreachable


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with open_ledger(tmp_path, 2) as opened:
        opened.claim(10)
        opened.mark_unknown(["id-000000", "id-000001"])
        yield opened


def reconciler(ci: FakeCI, ledger: Ledger) -> Reconciler:
    """A reconciler that lists the window whatever the number of items (a few are otherwise
    looked up one by one: tests/engine/test_stragglers.py)."""
    return Reconciler(
        ci.client,
        ledger,
        "q1",
        retrier=Retrier(RetryPolicy.for_tests(attempts=2)),
        few=0,
        wall=lambda: T0 + timedelta(minutes=1),
    )


def made_by_lost_request(ci: FakeCI, n: int, created: str = "2024-05-01T10:00:00+0000") -> str:
    """A job CI created for item `n` although the answer to its request never arrived."""
    it = item(n)
    return ci.add_job(
        JobState.SUBMITTED,
        input_object=it.key,
        output_bucket=it.output_bucket,
        output_object=it.output_key,
        creation_time=created,
    )


def state_and_job(ledger: Ledger, item_id: str) -> tuple[str, str | None]:
    state, job_id = ledger.connection.execute(
        "SELECT state, job_id FROM items WHERE item_id = ?", (item_id,)
    ).fetchone()
    return state, job_id


async def settle(ci: FakeCI, ledger: Ledger) -> tuple[Reconciler, int]:
    made = reconciler(ci, ledger)
    return made, await made.settle(T0, T0 + timedelta(minutes=1))


async def test_a_job_ci_made_is_adopted_and_an_item_without_one_goes_back_to_pending(
    ledger: Ledger,
) -> None:
    ci = FakeCI()
    job_id = made_by_lost_request(ci, 0)

    made, unsettled = await settle(ci, ledger)

    assert unsettled == 0
    assert state_and_job(ledger, "id-000000") == (State.SUBMITTED, job_id)
    assert state_and_job(ledger, "id-000001") == (State.PENDING, None)
    assert (made.adopted, made.released) == (1, 1)
    assert ci.count("submit") == 0


async def test_the_unknown_items_are_settled_by_one_listing_of_the_queue_around_the_submissions(
    ledger: Ledger,
) -> None:
    ci = FakeCI()

    await settle(ci, ledger)

    queries = [query for op, query in ci.calls if op == "list_jobs_page"]
    assert len(queries) == 1
    assert "input_object" not in queries[0]
    assert queries[0]["queue_id"] == "q1"
    assert queries[0]["start_creation_time"] == "2024-05-01T09:50:00+0000"
    assert queries[0]["end_creation_time"] == "2024-05-01T10:11:00+0000"
    assert ci.count("list_jobs") == 0


async def test_a_queue_too_busy_to_list_for_a_few_items_is_searched_item_by_item_instead(
    ledger: Ledger,
) -> None:
    ci = FakeCI()
    for n in range(500):  # other jobs of the window, 5 pages for 2 items
        ci.add_job(
            JobState.SUCCESS,
            input_object=f"other/{n}.jpg",
            creation_time="2024-05-01T10:00:00+0000",
        )
    job_id = made_by_lost_request(ci, 0)

    _made, unsettled = await settle(ci, ledger)

    assert unsettled == 0
    assert state_and_job(ledger, "id-000000") == (State.SUBMITTED, job_id)
    assert state_and_job(ledger, "id-000001") == (State.PENDING, None)
    assert ci.count("list_jobs_page") <= 2
    queries = [query for op, query in ci.calls if op == "list_jobs"]
    assert sorted(q["input_object"] for q in queries) == ["in/000000.jpg", "in/000001.jpg"]
    assert queries[0]["start_creation_time"] == "2024-05-01T09:50:00+0000"


async def test_a_listing_that_keeps_failing_falls_back_to_looking_items_up_one_by_one(
    ledger: Ledger,
) -> None:
    ci = FakeCI()
    ci.fail("list_jobs_page", unreachable(), unreachable())
    job_id = made_by_lost_request(ci, 1)

    _made, unsettled = await settle(ci, ledger)

    assert unsettled == 0
    assert state_and_job(ledger, "id-000001") == (State.SUBMITTED, job_id)
    assert ci.count("list_jobs") == 2


async def test_a_job_for_the_same_input_but_another_output_is_not_adopted(ledger: Ledger) -> None:
    ci = FakeCI()
    ci.add_job(JobState.SUBMITTED, input_object="in/000000.jpg", output_object="elsewhere.webp")

    await settle(ci, ledger)

    assert state_and_job(ledger, "id-000000") == (State.PENDING, None)


async def test_a_job_the_item_had_before_is_not_the_answer_to_this_submission(
    tmp_path: Path,
) -> None:
    ci = FakeCI()
    with open_ledger(tmp_path, 1) as ledger:
        earlier = made_by_lost_request(ci, 0)
        ledger.claim(1)
        ledger.mark_submitted([("id-000000", earlier)])
        ledger.mark_failed([("id-000000", "InvalidImage", "bad")])
        ledger.retry_failed()
        ledger.claim(1)
        ledger.mark_unknown(["id-000000"])

        await settle(ci, ledger)

        assert state_and_job(ledger, "id-000000")[0] == State.PENDING


async def test_of_several_matching_jobs_the_earliest_is_adopted(ledger: Ledger) -> None:
    ci = FakeCI()
    made_by_lost_request(ci, 0, created="2024-05-01T10:00:30+0000")
    first = made_by_lost_request(ci, 0, created="2024-05-01T10:00:10+0000")

    await settle(ci, ledger)

    assert state_and_job(ledger, "id-000000") == (State.SUBMITTED, first)


async def test_an_item_whose_lookup_fails_stays_unknown_and_is_counted_unsettled(
    ledger: Ledger,
) -> None:
    ci = FakeCI()
    ci.fail("list_jobs_page", *[unreachable()] * 2)  # the listing, two attempts
    ci.fail("list_jobs", *[unreachable()] * 4)  # then two items, two attempts each

    made, unsettled = await settle(ci, ledger)

    assert unsettled == 2
    assert ledger.counts()[State.UNKNOWN] == 2
    assert (made.adopted, made.released) == (0, 0)


async def test_a_long_window_is_listed_as_spans_side_by_side_that_leave_no_second_out(
    ledger: Ledger,
) -> None:
    ci = FakeCI()
    job_id = made_by_lost_request(ci, 0)
    made = reconciler(ci, ledger)
    sent = {"id-000000": T0, "id-000001": T0 + timedelta(seconds=30)}

    unsettled = await made.settle(T0, T0 + timedelta(seconds=40), sent=sent, skew=0.0)

    assert unsettled == 0
    assert state_and_job(ledger, "id-000000") == (State.SUBMITTED, job_id)
    assert state_and_job(ledger, "id-000001") == (State.PENDING, None)
    spans = sorted(
        (query["start_creation_time"], query["end_creation_time"])
        for op, query in ci.calls
        if op == "list_jobs_page"
    )
    assert len(spans) == 2  # no more spans than items to settle
    # From two seconds (the slack) before the first send to two after the reconciler's now.
    assert spans[0][0] == "2024-05-01T09:59:58+0000"
    assert spans[-1][1] == "2024-05-01T10:01:02+0000"
    # Each span begins a second before the last one ends: whether CI reads the bounds as
    # inclusive or not, every second of the window is in a span.
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert datetime.strptime(start, "%Y-%m-%dT%H:%M:%S%z") == datetime.strptime(
            end, "%Y-%m-%dT%H:%M:%S%z"
        ) - timedelta(seconds=1)


async def test_an_item_given_up_on_long_enough_ago_is_settled_by_the_first_pass_that_sees_it(
    ledger: Ledger,
) -> None:
    ci = FakeCI()
    made = Reconciler(
        ci.client,
        ledger,
        "q1",
        retrier=Retrier(RetryPolicy.for_tests()),
        few=0,
        clock=lambda: 100.0,
        wall=lambda: T0 + timedelta(minutes=1),
    )
    # Given up on five seconds ago (id-000000), or at a time the sender did not note.
    given_up = {"id-000000": 95.0}

    await made.settle(T0, T0 + timedelta(minutes=1), min_age=2.0, given_up=given_up)

    assert state_and_job(ledger, "id-000000") == (State.PENDING, None)
    assert state_and_job(ledger, "id-000001") == (State.UNKNOWN, None)
    assert made.waiting == 1
    assert given_up == {}
