"""The backend on its own, with no HTTP: job lifecycle, scheduling, queues, listing."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.emulator.backend import Backend, JobQuery, Settings
from orchestrator.emulator.errors import InvalidArgument, NoSuchBucket, QueueSaturated
from orchestrator.emulator.model import JobRequest, JobState, NotifyConfig, Output, QueueState
from tests.emulator.support import BUCKET, REGION


def make_backend(data_dir: Path, **settings: object) -> Backend:
    return Backend(data_dir, region=REGION, settings=Settings(**settings))  # type: ignore[arg-type]


def request(
    backend: Backend, n: int = 0, *, level: int = 0, key: str = "photos/cat.jpg"
) -> JobRequest:
    return JobRequest(
        input_object=key,
        output=Output(REGION, BUCKET, f"out/{n}.jpg"),
        queue_id=backend.queue_id_for(BUCKET),
        process_rule="imageMogr2/rotate/90",
        has_pic_process=True,
        job_level=level,
    )


def states(backend: Backend, ids: list[str]) -> list[str]:
    found, _ = backend.describe(BUCKET, ids)
    return [job.state.value for job in found]


def test_the_default_bucket_is_the_only_folder_and_its_queue_id_is_stable(data_dir: Path) -> None:
    first, second = make_backend(data_dir), make_backend(data_dir)

    assert first.default_bucket == BUCKET
    assert first.queue(BUCKET).queue_id == second.queue(BUCKET).queue_id
    assert first.queue(BUCKET).queue_id.startswith("p")
    assert len(first.queue(BUCKET).queue_id) == 33


def test_several_bucket_folders_need_a_named_default(data_dir: Path) -> None:
    (data_dir / "other-1250000000").mkdir()

    with pytest.raises(ValueError, match="several bucket folders"):
        Backend(data_dir)
    assert Backend(data_dir, default_bucket="other-1250000000").default_bucket == "other-1250000000"


def test_an_empty_data_dir_gets_the_example_bucket(tmp_path: Path) -> None:
    backend = Backend(tmp_path / "empty")

    assert backend.default_bucket == "examplebucket-1250000000"
    assert (tmp_path / "empty" / "examplebucket-1250000000").is_dir()


def test_an_unknown_bucket_is_no_such_bucket(data_dir: Path) -> None:
    backend = make_backend(data_dir)

    with pytest.raises(NoSuchBucket):
        backend.submit("nobucket-1250000000", request(backend))


def test_instant_jobs_finish_at_the_next_touch(data_dir: Path) -> None:
    backend = make_backend(data_dir)
    job = backend.submit(BUCKET, request(backend))

    assert job.state is JobState.SUBMITTED
    backend.tick()
    assert job.state is JobState.SUCCESS
    assert job.start_time is not None and job.end_time is not None
    assert backend.store.bucket(BUCKET) is not None
    assert "out/0.jpg" in backend.bucket(BUCKET)


def test_without_writing_outputs_a_job_answers_the_same_but_stores_no_object(
    data_dir: Path,
) -> None:
    writing = make_backend(data_dir)
    written = writing.submit(BUCKET, request(writing))
    writing.tick()
    result = written.result
    writing.reset()
    backend = make_backend(data_dir, write_outputs=False)
    job = backend.submit(BUCKET, request(backend, 1))

    backend.tick()

    assert job.state is JobState.SUCCESS
    assert job.result is not None and result is not None
    assert job.result.object_name == "out/1.jpg"
    assert (job.result.info, job.result.size, job.result.original_etag) == (
        result.info,
        result.size,
        result.original_etag,
    )
    assert "out/1.jpg" not in backend.bucket(BUCKET)


def test_delayed_jobs_run_for_job_seconds_of_emulator_time(data_dir: Path) -> None:
    backend = make_backend(data_dir, progression="delay", job_seconds=100)
    job = backend.submit(BUCKET, request(backend))

    backend.tick()
    assert job.state is JobState.RUNNING
    backend.advance(99)
    assert job.state is JobState.RUNNING
    backend.advance(1)
    assert job.state is JobState.SUCCESS
    assert job.end_time is not None and job.start_time is not None
    assert job.end_time - job.start_time == pytest.approx(100)


def test_no_more_than_max_concurrent_jobs_run_at_once(data_dir: Path) -> None:
    backend = make_backend(data_dir, progression="delay", job_seconds=100, queue_max_concurrent=2)
    ids = [backend.submit(BUCKET, request(backend, n)).job_id for n in range(5)]

    backend.tick()
    assert states(backend, ids) == ["Running"] * 2 + ["Submitted"] * 3
    backend.advance(100)
    assert states(backend, ids) == ["Success"] * 2 + ["Running"] * 2 + ["Submitted"]
    backend.advance(250)  # one advance covers several rounds
    assert states(backend, ids) == ["Success"] * 5


def test_higher_job_levels_start_first_then_creation_order(data_dir: Path) -> None:
    backend = make_backend(data_dir, progression="delay", job_seconds=10, queue_max_concurrent=1)
    low = backend.submit(BUCKET, request(backend, 0, level=0)).job_id
    high = backend.submit(BUCKET, request(backend, 1, level=2)).job_id
    mid_a = backend.submit(BUCKET, request(backend, 2, level=1)).job_id
    mid_b = backend.submit(BUCKET, request(backend, 3, level=1)).job_id

    order = []
    backend.tick()
    for _ in range(4):
        order += [j for j in (low, high, mid_a, mid_b) if states(backend, [j]) == ["Running"]]
        backend.advance(10)

    assert order == [high, mid_a, mid_b, low]


def test_a_paused_queue_holds_new_jobs_in_pause_until_resumed(data_dir: Path) -> None:
    backend = make_backend(data_dir)
    queue_id = backend.queue_id_for(BUCKET)
    backend.update_queue(BUCKET, queue_id, "q", QueueState.PAUSED, NotifyConfig())
    job = backend.submit(BUCKET, request(backend))

    backend.tick()
    assert job.state is JobState.PAUSE
    backend.update_queue(BUCKET, queue_id, "q", QueueState.ACTIVE, NotifyConfig())
    assert job.state is JobState.SUBMITTED
    backend.tick()
    assert job.state is JobState.SUCCESS


def test_more_than_max_size_queued_jobs_is_queue_saturated(data_dir: Path) -> None:
    backend = make_backend(
        data_dir, progression="delay", job_seconds=10, queue_max_size=2, queue_max_concurrent=1
    )
    backend.submit(BUCKET, request(backend, 0))
    backend.tick()  # the first one runs, so it no longer counts as queued
    backend.submit(BUCKET, request(backend, 1))
    backend.submit(BUCKET, request(backend, 2))

    with pytest.raises(QueueSaturated):
        backend.submit(BUCKET, request(backend, 3))
    backend.advance(10)
    backend.submit(BUCKET, request(backend, 3))


def test_cancel_only_applies_to_jobs_that_have_not_started(data_dir: Path) -> None:
    backend = make_backend(data_dir, progression="delay", job_seconds=10, queue_max_concurrent=1)
    first = backend.submit(BUCKET, request(backend, 0))
    second = backend.submit(BUCKET, request(backend, 1))
    backend.tick()

    backend.cancel(BUCKET, second.job_id)
    with pytest.raises(InvalidArgument):
        backend.cancel(BUCKET, first.job_id)
    backend.advance(100)
    assert (first.state, second.state) == (JobState.SUCCESS, JobState.CANCEL)


def test_listing_pages_through_every_job_with_next_token(data_dir: Path) -> None:
    backend = make_backend(data_dir)
    ids = [backend.submit(BUCKET, request(backend, n)).job_id for n in range(7)]

    seen: list[str] = []
    token = ""
    while True:
        page, token = backend.list_jobs(BUCKET, JobQuery(size=3, next_token=token))
        seen += [job.job_id for job in page]
        if not token:
            break
    assert seen == ids[::-1]
    ascending, token = backend.list_jobs(BUCKET, JobQuery(size=100, descending=False))
    assert [job.job_id for job in ascending] == ids
    assert token == ""


def test_listing_filters_by_state_input_object_and_creation_time(data_dir: Path) -> None:
    backend = make_backend(data_dir, progression="delay", job_seconds=1000)
    old = backend.submit(BUCKET, request(backend, 0, key="photos/cat.jpg"))
    backend.advance(3600)
    new = backend.submit(BUCKET, request(backend, 1, key="photos/dog.png"))
    backend.tick()

    def ids(**query: object) -> list[str]:
        page, _ = backend.list_jobs(BUCKET, JobQuery(**query))  # type: ignore[arg-type]
        return [job.job_id for job in page]

    assert ids(input_object="photos/dog.png") == [new.job_id]
    assert ids(states=frozenset({JobState.SUCCESS})) == [old.job_id]
    assert ids(start=int(new.creation_time)) == [new.job_id]
    assert ids(end=int(old.creation_time)) == [old.job_id]
    assert ids(start=int(old.creation_time), end=int(new.creation_time)) == [new.job_id, old.job_id]
    assert ids(queue_id="pother") == []
    assert ids(workflow_id="w1") == []


def test_a_bad_next_token_is_invalid_argument(data_dir: Path) -> None:
    backend = make_backend(data_dir)

    with pytest.raises(InvalidArgument):
        backend.list_jobs(BUCKET, JobQuery(next_token="garbage"))


def test_reset_forgets_jobs_and_time_but_keeps_objects(data_dir: Path) -> None:
    backend = make_backend(data_dir)
    job = backend.submit(BUCKET, request(backend))
    backend.advance(500)
    (data_dir / BUCKET / "added-by-hand.jpg").write_bytes(b"x")

    backend.reset()

    assert backend.describe(BUCKET, [job.job_id]) == ([], [job.job_id])
    assert backend.clock.offset == 0
    assert backend.stats.jobs_created == 0
    assert "added-by-hand.jpg" in backend.bucket(BUCKET)
    assert "out/0.jpg" in backend.bucket(BUCKET)


def test_templates_are_validated_and_can_be_replaced(data_dir: Path) -> None:
    backend = make_backend(data_dir)

    made = backend.add_template("rot", "imageMogr2/rotate/90", is_pic_info=True)
    assert made.template_id.startswith("t") and len(made.template_id) == 33
    again = backend.add_template("rot", "imageMogr2/rotate/180")
    assert again.template_id == made.template_id
    assert backend.templates[made.template_id].rule == "imageMogr2/rotate/180"
    with pytest.raises(InvalidArgument):
        backend.add_template("bad", "imageMogr2/frobnicate/1")
