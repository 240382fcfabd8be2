"""The submitter against a CI in memory and a real ledger file: what each outcome leaves."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.cloud.retry import Retrier, RetryBudget, RetryPolicy
from orchestrator.engine.flow import Outstanding
from orchestrator.engine.submitter import JobTemplate, Submitter
from orchestrator.ledger import Ledger, State
from tests.engine.fakes import FakeCI, item, lost, open_ledger, refused, throttled, unreachable

TEMPLATE = JobTemplate(queue_id="q1", template_id=None, process_rule="imageMogr2/rotate/90",
                       is_pic_info=False)  # fmt: skip


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with open_ledger(tmp_path, 3) as opened:
        yield opened


def submitter(
    ci: FakeCI, ledger: Ledger, retrier: Retrier | None = None, concurrency: int = 2
) -> tuple[Submitter, list[tuple[str, str]]]:
    heard: list[tuple[str, str]] = []

    def on_failure(code: str, message: str) -> bool:
        heard.append((code, message))
        return False

    made = Submitter(
        ci.client,
        ledger,
        TEMPLATE,
        Outstanding(100),
        retrier=retrier or Retrier(RetryPolicy.for_tests(attempts=3)),
        concurrency=concurrency,
        on_failure=on_failure,
    )
    return made, heard


def states(ledger: Ledger) -> dict[str, int]:
    return {state: n for state, n in ledger.counts().items() if n}


async def test_every_accepted_item_is_recorded_submitted_with_its_job_id(ledger: Ledger) -> None:
    ci = FakeCI()
    sub, _ = submitter(ci, ledger)

    await sub.run(asyncio.Event())

    assert states(ledger) == {State.SUBMITTED: 3}
    assert sub.stats.submitted == 3
    assert sorted(job_id for _, job_id in ledger.outstanding_job_ids(10)) == sorted(ci.jobs)
    assert sub.outstanding.count == 3


async def test_higher_job_levels_are_sent_first(tmp_path: Path) -> None:
    ci = FakeCI()
    with open_ledger(tmp_path) as ledger:
        ledger.add_items([item(0, level=0), item(1, level=2), item(2, level=1)])
        sub, _ = submitter(ci, ledger, concurrency=1)
        await sub.run(asyncio.Event())
    assert [key for op, key in ci.calls if op == "submit"] == [
        "in/000001.jpg",
        "in/000002.jpg",
        "in/000000.jpg",
    ]


async def test_a_refused_item_fails_with_cis_code_and_the_breaker_hears_it(
    ledger: Ledger,
) -> None:
    ci = FakeCI()
    ci.fail("submit", refused("InvalidArgument", "no such template"))
    sub, heard = submitter(ci, ledger, concurrency=1)

    await sub.run(asyncio.Event())

    assert states(ledger) == {State.SUBMITTED: 2, State.FAILED: 1}
    assert heard == [("InvalidArgument", "no such template")]
    assert ci.count("submit") == 3  # a refusal is not retried


async def test_a_submission_whose_answer_was_lost_is_left_unknown_and_not_resent(
    ledger: Ledger,
) -> None:
    ci = FakeCI()
    ci.create_then_lose.add("in/000000.jpg")
    sub, _ = submitter(ci, ledger)

    await sub.run(asyncio.Event())

    assert states(ledger) == {State.SUBMITTED: 2, State.UNKNOWN: 1}
    assert [key for op, key in ci.calls if op == "submit"].count("in/000000.jpg") == 1
    assert sub.outstanding.count == 2  # the unknown one holds no room in the queue


async def test_an_item_whose_request_never_left_goes_back_to_pending_after_every_attempt(
    ledger: Ledger,
) -> None:
    ci = FakeCI()
    ci.fail("submit", unreachable(), unreachable(), unreachable())
    sub, _ = submitter(ci, ledger, concurrency=1)

    await sub.run(asyncio.Event())

    assert ci.count("submit") == 3 + 2  # three attempts for the first item, one for the others
    assert states(ledger) == {State.SUBMITTED: 2, State.PENDING: 1}
    assert sub.stats.last_error is not None


async def test_once_the_retry_budget_is_spent_claimed_items_are_released_unsent(
    ledger: Ledger,
) -> None:
    ci = FakeCI()
    ci.fail("submit", *[throttled()] * 10)
    budget = RetryBudget(capacity=5, retry_cost=5)
    sub, _ = submitter(
        ci, ledger, Retrier(RetryPolicy.for_tests(attempts=3), budget), concurrency=1
    )

    await sub.run(asyncio.Event())

    assert budget.exhausted
    assert states(ledger) == {State.PENDING: 3}
    assert ci.count("submit") == 2  # one try, one retry the budget paid for, then nothing
    assert sub.outstanding.count == 0


async def test_nothing_is_claimed_once_stop_is_set(ledger: Ledger) -> None:
    ci = FakeCI()
    sub, _ = submitter(ci, ledger)
    stop = asyncio.Event()
    stop.set()

    await sub.run(stop)

    assert states(ledger) == {State.PENDING: 3}
    assert ci.calls == []


async def test_with_nothing_left_to_claim_the_submitter_waits_on_settling_and_sends_what_it_releases(
    ledger: Ledger,
) -> None:
    ci = FakeCI()
    ci.fail("submit", lost())  # the first request's outcome is unknown (it made no job)
    sub, _ = submitter(ci, ledger, concurrency=1)
    calls: list[tuple[int, int]] = []  # (items in flight, items unknown) at each call

    async def refill(stop: asyncio.Event) -> bool:
        sub.flush()
        unknown = [row.item_id for row in ledger.unknown_items(10)]
        calls.append((sub.in_flight, len(unknown)))
        if not unknown:
            return False
        ledger.release(unknown)  # settled: no job was made, so it goes back to pending
        return True

    sub.refill = refill
    await sub.run(asyncio.Event())

    assert calls == [(0, 1), (0, 0)]
    assert states(ledger) == {State.SUBMITTED: 3}
    assert [key for op, key in ci.calls if op == "submit"].count("in/000000.jpg") == 2


@pytest.mark.parametrize(
    ("rate", "window"),
    [(None, 16), (100.0, 50), (500.0, 64), (10.0, 10), (0.5, 1)],
)
def test_a_paced_submitter_claims_about_half_a_second_of_work_at_a_time(
    ledger: Ledger, rate: float | None, window: int
) -> None:
    # Each claim commits with the outcomes written since the last: at 100/s, claims of 8
    # committed twelve times a second, and each commit costs more than the rows it writes.
    made = Submitter(
        FakeCI().client,
        ledger,
        TEMPLATE,
        Outstanding(100),
        retrier=Retrier(RetryPolicy.for_tests(attempts=3)),
        concurrency=16,
        pace=lambda: rate,
    )
    assert made.window() == window
