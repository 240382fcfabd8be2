"""Queue resolution and changes, one path for `picjobs run` and `picjobs queue`."""

from __future__ import annotations

import pytest

from orchestrator.cloud.models import QueueState
from orchestrator.cloud.retry import Retrier, RetryPolicy
from orchestrator.engine.queue import (
    NotifyOptions,
    notify_config,
    resolve_queue,
    set_notify,
    set_state,
)
from orchestrator.exceptions import UsageError
from tests.engine.fakes import FakeCI

RETRIER = Retrier(RetryPolicy.for_tests(attempts=2))
# As CI describes a queue's notifications: fields it does not take back come along, empty or not.
DESCRIBED = {"Url": "https://hooks.example.com/ci", "Event": "TaskFinish", "Type": "Url",
             "State": "On", "ResultFormat": "XML", "MqMode": "", "QueueType": "Normal"}  # fmt: skip
KEPT = {"Url": "https://hooks.example.com/ci", "Event": "TaskFinish", "Type": "Url",
        "State": "On", "ResultFormat": "XML"}  # fmt: skip


async def resolve(ci: FakeCI, queue_id: str | None = None, resume: bool = False) -> str:
    queue = await resolve_queue(
        ci.client, RETRIER, queue_id=queue_id, resume=resume, where="m.toml"
    )
    return queue.queue_id


async def test_the_named_queue_is_used_and_one_that_does_not_exist_is_a_usage_error() -> None:
    ci = FakeCI()
    ci.add_queue("q1")
    ci.add_queue("q2")

    assert await resolve(ci, "q2") == "q2"
    with pytest.raises(UsageError, match=r"m.toml: \[target\] queue_id 'q9' does not exist"):
        await resolve(ci, "q9")


async def test_without_a_name_the_first_active_queue_is_used() -> None:
    ci = FakeCI()
    ci.add_queue("q1", QueueState.PAUSED)
    ci.add_queue("q2")

    assert await resolve(ci) == "q2"


async def test_a_bucket_without_pic_queues_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="has no pic queue"):
        await resolve(FakeCI())


async def test_a_paused_queue_is_refused_unless_asked_to_resume_it() -> None:
    ci = FakeCI()
    ci.add_queue("q1", QueueState.PAUSED, DESCRIBED)

    with pytest.raises(UsageError, match=r"q1 is Paused; .* --resume-queue"):
        await resolve(ci)
    assert ci.count("update_queue") == 0


async def test_resuming_keeps_the_name_and_sends_back_only_the_notify_fields_ci_takes() -> None:
    ci = FakeCI()
    ci.add_queue("q1", QueueState.PAUSED, DESCRIBED)

    assert await resolve(ci, resume=True) == "q1"

    updates = [change for op, change in ci.calls if op == "update_queue"]
    assert updates == [{"name": "name-q1", "state": QueueState.ACTIVE, "notify": KEPT}]


async def test_the_queue_command_resumes_a_queue_the_same_way() -> None:
    ci = FakeCI()
    ci.add_queue("q1", QueueState.PAUSED, DESCRIBED)

    before, after = await set_state(ci.client, RETRIER, "q1", QueueState.ACTIVE)

    assert (before.state, after.state) == (QueueState.PAUSED, QueueState.ACTIVE)
    assert [change for op, change in ci.calls if op == "update_queue"] == [
        {"name": "name-q1", "state": QueueState.ACTIVE, "notify": KEPT}
    ]


async def test_a_queue_already_in_the_state_asked_for_is_not_changed() -> None:
    ci = FakeCI()
    ci.add_queue("q1")

    before, after = await set_state(ci.client, RETRIER, "q1", QueueState.ACTIVE)

    assert before is after
    assert ci.count("update_queue") == 0


async def test_notifications_keep_the_queues_state_and_the_settings_not_given() -> None:
    ci = FakeCI()
    ci.add_queue("q1", QueueState.PAUSED, DESCRIBED)

    queue = await set_notify(ci.client, RETRIER, "q1", NotifyOptions(events=["WorkflowFinish"]))

    assert queue.state == QueueState.PAUSED
    assert queue.notify == {**KEPT, "Event": "WorkflowFinish"}


def test_notifications_by_url_need_an_http_address() -> None:
    with pytest.raises(UsageError, match="need --url with an http:// or https:// address"):
        notify_config({}, NotifyOptions(url="ftp://example.com"))
    with pytest.raises(UsageError, match="need --mq-name"):
        notify_config({}, NotifyOptions(notify_type="TDMQ"))
    assert notify_config(DESCRIBED, NotifyOptions(state="Off")) == {**KEPT, "State": "Off"}
