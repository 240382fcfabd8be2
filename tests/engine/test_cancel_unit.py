"""Cancelling a ledger's outstanding jobs, against a CI in memory."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from orchestrator.cloud.client import CIClient
from orchestrator.cloud.models import JobState
from orchestrator.cloud.retry import Retrier, RetryPolicy
from orchestrator.engine.cancel import MESSAGE, cancel, cancel_outstanding
from orchestrator.exit_codes import ExitCode
from orchestrator.ledger import Ledger, State
from tests.engine.fakes import FakeCI, open_ledger, refused

RETRIER = Retrier(RetryPolicy.for_tests(attempts=2))


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with open_ledger(tmp_path, 5) as opened:
        yield opened


def submit(ci: FakeCI, ledger: Ledger, *states: str) -> list[str]:
    """Send as many pending items as `states` names; CI then reports them in those states."""
    claimed = ledger.claim(len(states))
    job_ids = [
        ci.add_job(state, input_object=it.key) for it, state in zip(claimed, states, strict=True)
    ]
    ledger.mark_submitted(zip([it.item_id for it in claimed], job_ids, strict=True))
    return job_ids


def state_of(ledger: Ledger, job_id: str) -> tuple[str, str | None]:
    state, message = ledger.connection.execute(
        "SELECT state, message FROM items WHERE job_id = ?", (job_id,)
    ).fetchone()
    return state, message


async def test_jobs_not_started_are_cancelled_running_ones_left_and_finished_ones_recorded(
    ledger: Ledger,
) -> None:
    ci = FakeCI()
    waiting, held, running, done = submit(
        ci, ledger, JobState.SUBMITTED, JobState.PAUSE, JobState.RUNNING, JobState.SUCCESS
    )

    report = await cancel_outstanding(ledger, ci.client, retrier=RETRIER)

    assert (report.cancelled, report.running, report.final, report.errors) == (2, 1, 1, 0)
    assert state_of(ledger, waiting) == (State.CANCELLED, MESSAGE)
    assert state_of(ledger, held) == (State.CANCELLED, MESSAGE)
    assert state_of(ledger, running)[0] == State.SUBMITTED
    assert state_of(ledger, done)[0] == State.SUCCESS
    assert sorted(job_id for op, job_id in ci.calls if op == "cancel") == sorted([waiting, held])
    assert report.exit_code is ExitCode.OK


async def test_a_refused_cancel_is_settled_by_describing_the_job_again(ledger: Ledger) -> None:
    ci = FakeCI()
    started, stuck = submit(ci, ledger, JobState.SUBMITTED, JobState.SUBMITTED)
    ci.fail("cancel", refused("InvalidState"), refused("InternalError"))
    refuse = ci.cancel

    async def refuse_while_the_first_job_starts(job_id: str) -> None:
        try:
            await refuse(job_id)
        finally:
            if job_id == started:
                ci.finish(started, JobState.RUNNING)

    ci.cancel = refuse_while_the_first_job_starts  # type: ignore[method-assign]

    report = await cancel_outstanding(ledger, ci.client, retrier=RETRIER)

    assert (report.cancelled, report.running, report.errors) == (0, 1, 1)
    assert {state_of(ledger, started)[0], state_of(ledger, stuck)[0]} == {State.SUBMITTED}
    assert report.exit_code is ExitCode.FAILED


async def test_with_nothing_outstanding_ci_is_not_contacted_and_pending_items_are_counted(
    ledger: Ledger,
) -> None:
    connected: list[bool] = []

    @contextlib.asynccontextmanager
    async def connect() -> AsyncIterator[CIClient]:
        connected.append(True)
        yield FakeCI().client

    report = await cancel(ledger, connect)

    assert connected == []
    assert (report.pending, report.pending_cancelled, report.unsettled) == (5, 0, 0)
    assert report.summary("m") == (
        "m: cancelled 0, already running 0, already final 0, "
        "pending 5 not touched (--pending cancels them)"
    )


async def test_pending_items_are_cancelled_only_when_asked(ledger: Ledger) -> None:
    ci = FakeCI()
    submit(ci, ledger, JobState.SUBMITTED)

    @contextlib.asynccontextmanager
    async def connect() -> AsyncIterator[CIClient]:
        yield ci.client

    report = await cancel(ledger, connect, pending=True, retrier=RETRIER)

    assert (report.cancelled, report.pending_cancelled, report.pending) == (1, 4, 0)
    assert ledger.counts()[State.CANCELLED] == 5
