"""The tracker against a CI in memory and a real ledger file: what describing jobs records."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.cloud.models import JobDetail, JobState, PicResult
from orchestrator.cloud.retry import Retrier, RetryPolicy
from orchestrator.engine.flow import Outstanding
from orchestrator.engine.tracker import MISSING_LIMIT, Tracker
from orchestrator.ledger import JobUpdate, Ledger, State
from tests.engine.fakes import FakeCI, open_ledger, unreachable


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with open_ledger(tmp_path, 4) as opened:
        yield opened


def submit_all(ci: FakeCI, ledger: Ledger) -> list[str]:
    """Every pending item becomes a Submitted job of the fake CI; their JobIds, in order."""
    claimed = ledger.claim(100)
    job_ids = [ci.add_job(JobState.SUBMITTED, input_object=it.key) for it in claimed]
    ledger.mark_submitted(zip([it.item_id for it in claimed], job_ids, strict=True))
    return job_ids


def tracker(ci: FakeCI, ledger: Ledger, heard: list[JobDetail] | None = None, **kw: int) -> Tracker:
    return Tracker(
        ci.client,
        ledger,
        Outstanding(100, ledger.outstanding_count()),
        retrier=Retrier(RetryPolicy.for_tests(attempts=2)),
        poll_min=0.0,
        poll_max=0.0,
        on_final=None if heard is None else heard.append,
        **kw,
    )


def row(ledger: Ledger, job_id: str) -> tuple[str, str | None, str | None]:
    state, code, message = ledger.connection.execute(
        "SELECT state, code, message FROM items WHERE job_id = ?", (job_id,)
    ).fetchone()
    return state, code, message


async def test_final_jobs_are_recorded_and_the_rest_stay_outstanding(ledger: Ledger) -> None:
    ci = FakeCI()
    ok, bad, running, waiting = submit_all(ci, ledger)
    ci.jobs[ok] = JobDetail(ok, JobState.SUCCESS, result=PicResult(object_name="out/a.webp"))
    ci.finish(bad, JobState.FAILED, "InvalidImage", "not an image")
    ci.finish(running, JobState.RUNNING)
    heard: list[JobDetail] = []
    track = tracker(ci, ledger, heard)

    finished = await track.poll_once()

    assert finished == 2
    assert row(ledger, ok) == (State.SUCCESS, None, None)
    assert row(ledger, bad) == (State.FAILED, "InvalidImage", "not an image")
    assert {row(ledger, running)[0], row(ledger, waiting)[0]} == {State.SUBMITTED}
    assert [job.job_id for job in heard] == [ok, bad]
    assert track.outstanding.count == 2


async def test_jobs_are_described_in_batches(ledger: Ledger) -> None:
    ci = FakeCI()
    job_ids = submit_all(ci, ledger)

    await tracker(ci, ledger, batch=3).poll_once()

    assert [ids for op, ids in ci.calls if op == "describe"] == [job_ids[:3], job_ids[3:]]


async def test_a_job_ci_does_not_know_fails_only_after_several_polls_in_a_row(
    ledger: Ledger,
) -> None:
    ci = FakeCI()
    gone, *_ = submit_all(ci, ledger)
    del ci.jobs[gone]
    track = tracker(ci, ledger)

    for _ in range(MISSING_LIMIT - 1):
        await track.poll_once()
    still = row(ledger, gone)
    await track.poll_once()

    assert still[0] == State.SUBMITTED
    assert row(ledger, gone) == (State.FAILED, "NoSuchJob", "CI no longer knows this job")


async def test_a_describe_that_fails_changes_nothing_and_the_next_poll_tries_again(
    ledger: Ledger,
) -> None:
    ci = FakeCI()
    first, *_ = submit_all(ci, ledger)
    for job_id in list(ci.jobs):
        ci.finish(job_id, JobState.SUCCESS)
    ci.fail("describe", unreachable(), unreachable())  # both attempts of the first poll
    track = tracker(ci, ledger)

    assert await track.poll_once() == 0
    assert row(ledger, first)[0] == State.SUBMITTED
    assert await track.poll_once() == 4


async def test_tracking_ends_when_submission_is_over_and_nothing_is_outstanding(
    ledger: Ledger,
) -> None:
    ci = FakeCI()
    for job_id in submit_all(ci, ledger):
        ci.finish(job_id, JobState.SUCCESS)
    submitting = asyncio.Event()  # clear: submission is over

    await tracker(ci, ledger).run(submitting, asyncio.Event())

    assert ledger.counts()[State.SUCCESS] == 4
    assert ci.count("describe") == 1


async def test_tracking_stops_when_told_even_with_jobs_outstanding(ledger: Ledger) -> None:
    ci = FakeCI()
    submit_all(ci, ledger)
    stop = asyncio.Event()
    stop.set()

    await tracker(ci, ledger).run(asyncio.Event(), stop)

    assert ci.calls == []
    assert ledger.outstanding_count() == 4


async def test_the_last_few_jobs_of_a_run_are_polled_again_soon_once_they_finish(
    ledger: Ledger,
) -> None:
    ci = FakeCI()
    first, *others = submit_all(ci, ledger)
    ci.finish(first, JobState.SUCCESS)
    track = Tracker(
        ci.client,
        ledger,
        Outstanding(100, ledger.outstanding_count()),
        retrier=Retrier(RetryPolicy.for_tests()),
        poll_min=0.5,
        poll_max=30.0,
    )

    # One of four finished: a fifth or more of what was described, however few jobs that is.
    assert await track.poll_once() == 1
    assert track.next_interval(4.0, 1) == 0.5
    # None of the three left finished: back off.
    assert await track.poll_once() == 0
    assert track.next_interval(4.0, 0) == 6.0
    assert track.next_interval(25.0, 0) == 30.0
    for job_id in others:
        ci.finish(job_id, JobState.SUCCESS)
    assert await track.poll_once() == 3
    assert track.next_interval(30.0, 3) == 0.5


async def test_final_states_of_several_pages_go_into_the_ledger_in_one_write(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    ci = FakeCI()
    job_ids = submit_all(ci, ledger)
    for job_id in job_ids:
        ci.finish(job_id, JobState.SUCCESS)
    writes: list[int] = []
    record = ledger.record_states

    def counted(rows: list[JobUpdate]) -> int:
        writes.append(len(rows))
        return record(rows)

    monkeypatch.setattr(ledger, "record_states", counted)

    finished = await tracker(ci, ledger, batch=1, write_every=3).poll_once()

    assert finished == 4
    assert writes == [3, 1]
    assert {row(ledger, job_id)[0] for job_id in job_ids} == {State.SUCCESS}
