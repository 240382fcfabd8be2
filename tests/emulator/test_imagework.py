"""The backend's remembered image work: the same bytes as imaging, never stale, bounded."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from orchestrator.emulator import imaging
from orchestrator.emulator.backend import Backend, Settings
from orchestrator.emulator.imagework import ImageWork
from orchestrator.emulator.model import JobRequest, JobState, Output
from tests.emulator.support import BUCKET, REGION, image_bytes

RULE = "imageMogr2/rotate/90"


def jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (4, 4)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG")
    return buffer.getvalue()


def test_a_remembered_result_is_the_same_as_processing_again() -> None:
    work, data = ImageWork(), image_bytes()

    first, second = work.process(data, RULE), work.process(data, RULE)

    assert second is first
    assert first == imaging.process(data, RULE)
    assert work.info(data) == imaging.image_info(data)
    assert work.info(data) is work.info(data)


def test_another_input_or_rule_is_processed_anew() -> None:
    work = ImageWork()
    blue, red = jpeg((30, 120, 200)), jpeg((200, 20, 20))

    from_blue = work.process(blue, RULE)
    from_red = work.process(red, RULE)
    thumbnail = work.process(blue, "imageMogr2/thumbnail/2x")

    assert from_red.data == imaging.process(red, RULE).data != from_blue.data
    assert thumbnail.data == imaging.process(blue, "imageMogr2/thumbnail/2x").data
    assert work.info(red).ave != work.info(blue).ave
    assert len(work) == 5


def test_large_inputs_are_processed_every_time() -> None:
    work, data = ImageWork(max_input=100), image_bytes()

    assert work.process(data, RULE) == imaging.process(data, RULE)
    assert work.info(data) == imaging.image_info(data)
    assert len(work) == 0


def test_the_least_recently_used_results_go_first_beyond_the_budget() -> None:
    inputs = [jpeg((n, n, n)) for n in range(0, 250, 10)]
    budget = 4 * (len(inputs[0]) + len(RULE) + 2 * len(inputs[0]))
    work = ImageWork(budget=budget)

    for data in inputs:
        work.process(data, RULE)
    kept = len(work)
    recent = work.process(inputs[-1], RULE)

    assert 1 <= kept < len(inputs)
    assert work.process(inputs[-1], RULE) is recent
    assert work.process(inputs[0], RULE) == imaging.process(inputs[0], RULE)


def test_failures_are_raised_every_time() -> None:
    work = ImageWork()

    for _ in range(2):
        with pytest.raises(imaging.ImageDecodeError):
            work.process(b"not an image", RULE)
        with pytest.raises(imaging.RuleError):
            work.process(image_bytes(), "imageMogr2/nonsense/1")
    assert len(work) == 0


def test_a_job_after_its_input_changed_on_disk_processes_the_new_content(
    data_dir: Path,
) -> None:
    backend = Backend(data_dir, region=REGION, settings=Settings())
    source = data_dir / BUCKET / "photos" / "tiny.jpg"
    outputs = []
    for n, colour in enumerate(((30, 120, 200), (200, 20, 20))):
        source.write_bytes(jpeg(colour))
        job = backend.submit(
            BUCKET,
            JobRequest(
                input_object="photos/tiny.jpg",
                output=Output(REGION, BUCKET, f"out/{n}.jpg"),
                queue_id=backend.queue_id_for(BUCKET),
                process_rule=RULE,
                is_pic_info="true",
                has_pic_process=True,
            ),
        )
        backend.tick()
        assert job.state is JobState.SUCCESS
        assert job.result is not None and job.result.original is not None
        assert job.result.original == imaging.image_info(source.read_bytes())
        outputs.append((data_dir / BUCKET / "out" / f"{n}.jpg").read_bytes())

    assert outputs[1] == imaging.process(source.read_bytes(), RULE).data != outputs[0]
