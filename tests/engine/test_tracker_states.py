"""The tracker is the one place where CI's job states become ledger states."""

from __future__ import annotations

import pytest

from orchestrator.cloud.models import JobDetail, JobState, PicResult
from orchestrator.engine.tracker import job_update, ledger_state
from orchestrator.ledger import State


@pytest.mark.parametrize(
    ("ci_state", "state"),
    [
        (JobState.SUCCESS, State.SUCCESS),
        (JobState.FAILED, State.FAILED),
        (JobState.CANCEL, State.CANCELLED),
        (JobState.SUBMITTED, State.SUBMITTED),
        (JobState.RUNNING, State.SUBMITTED),
        (JobState.PAUSE, State.SUBMITTED),
        ("SomethingNew", State.SUBMITTED),
    ],
)
def test_each_ci_state_has_its_ledger_state(ci_state: str, state: State) -> None:
    assert ledger_state(ci_state) is state


def test_every_ci_state_is_translated() -> None:
    assert {ledger_state(ci_state) for ci_state in JobState} <= set(State)


def test_a_successful_job_keeps_its_result_and_drops_ci_code_and_message() -> None:
    job = JobDetail(
        "job-1", JobState.SUCCESS, code="Success", message="ok",
        end_time="2024-05-01T18:00:10+0800", result=PicResult(object_name="out/a.webp"),
    )  # fmt: skip
    update = job_update(job)
    assert (update.state, update.code, update.message) == (State.SUCCESS, None, None)
    assert update.result == {"object_name": "out/a.webp"}
    assert update.finished_at is not None and update.finished_at.utcoffset() is not None


def test_a_failed_job_keeps_ci_code_and_message() -> None:
    update = job_update(JobDetail("job-2", JobState.FAILED, code="InternalError", message="boom"))
    assert (update.state, update.code, update.message) == (State.FAILED, "InternalError", "boom")
    assert update.finished_at is None
