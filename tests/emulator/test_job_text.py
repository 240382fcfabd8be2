"""Job answers written as text: byte for byte what the element tree wrote before."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from lxml import etree

from orchestrator.emulator import jobxml
from orchestrator.emulator.imaging import ImageInfo
from orchestrator.emulator.model import Job, JobRequest, JobState, Output, PicResult
from tests.emulator.test_store import AWKWARD

ODD = [*AWKWARD, "", "a\rb\tc\nd", "ctl\x01\x1f\x7f\x85", "lone\ud800surrogate", "\ufffe\uffff"]


def reference_body(
    jobs: Iterable[Job], *, missing: Iterable[str] = (), next_token: str | None = None
) -> bytes:
    """The element-tree writer the text replaced (kept for callbacks)."""
    return jobxml._jobs_body_element(list(jobs), missing, next_token)


# ---------------------------------------------------------------- jobs of every shape

INFO = ImageInfo("jpg", 4, 4, 75, "0x1e78c8", 0)


def job(text: str = "in.jpg", **changes: object) -> Job:
    request = JobRequest(
        input_object=text or "in.jpg",
        output=Output("ap-guangzhou", "out-1250000000", f"o/{text}"),
        queue_id="p" + "0" * 32,
        process_rule="imageMogr2/rotate/90",
        has_pic_process=True,
    )
    fields: dict[str, object] = {
        "job_id": "c" + "1" * 32,
        "seq": 1,
        "bucket": "in-1250000000",
        "region": "ap-guangzhou",
        "queue_id": "p" + "0" * 32,
        "request": request,
        "rule": "imageMogr2/rotate/90",
        "is_pic_info": False,
        "template_name": None,
        "state": JobState.SUBMITTED,
        "creation_time": 1_700_000_000.75,
    }
    fields.update(changes)
    return Job(**fields)  # type: ignore[arg-type]


def shapes() -> list[Job]:
    done = PicResult("o/in.jpg", '"abc"', None, INFO, 631)
    with_original = PicResult("o/in.jpg", '"abc"', INFO, INFO, 631)
    full = JobRequest(
        input_object="a&b.jpg",
        output=Output("ap-guangzhou", "out-1250000000", "o/<x>.jpg"),
        queue_id="p" + "0" * 32,
        template_id="t" + "2" * 32,
        is_pic_info="true",
        process_rule=None,
        has_pic_process=True,
        job_level=2,
        user_data="a&b<c>\r'\"",
        callback="https://example.com/cb?a=1&b=2",
        callback_format="JSON",
        callback_type="TDMQ",
        callback_mq_config=(("MqRegion", "bj"), ("MqName", "q&1"), ("MqMode", "")),
    )
    bare = JobRequest(input_object="k", output=Output("r", "b-1250000000", "o"))
    empty_pic = JobRequest(
        input_object="k", output=Output("r", "b-1250000000", "o"), has_pic_process=True
    )
    return [
        job(),
        job(state=JobState.RUNNING, start_time=1_700_000_001.0),
        job(state=JobState.SUCCESS, start_time=1.0, end_time=2.0, result=done),
        job(state=JobState.SUCCESS, is_pic_info=True, end_time=3.0, result=with_original),
        job(state=JobState.FAILED, code="ResourceNotFound", message="gone: <in.jpg> & co"),
        job(request=full, template_name="picjobs-thumb-webp", state=JobState.PAUSE),
        job(request=full, template_name=None),
        job(request=bare),
        job(request=empty_pic),
        job(request=JobRequest(input_object="k", output=Output("", "", ""), callback_mq_config=())),
        *(job(text) for text in ODD),
    ]


@pytest.mark.parametrize("shape", range(len(shapes())))
def test_one_job_answers_the_same_bytes(shape: int) -> None:
    subject = shapes()[shape]

    assert jobxml.jobs_body([subject]) == reference_body([subject])


def test_namespaced_callback_tags_are_written_by_the_element_tree() -> None:
    tags = (("{urn:x}MqName", "q"), ("{urn:y}MqMode", "Queue"))
    request = JobRequest(input_object="k", output=Output("r", "b-1", "o"), callback_mq_config=tags)
    subject = job(request=request)
    body = jobxml.jobs_body([subject, subject])

    assert body == reference_body([subject, subject])
    assert b'<ns2:MqName xmlns:ns2="urn:x">q</ns2:MqName>' in body


def test_many_jobs_unknown_ids_and_a_next_token_answer_the_same_bytes() -> None:
    jobs, missing = shapes(), ["c" + "9" * 32, *ODD]

    assert jobxml.jobs_body(jobs, missing=missing, next_token="42") == reference_body(
        jobs, missing=missing, next_token="42"
    )
    assert jobxml.jobs_body([]) == reference_body([])
    assert jobxml.jobs_body([], next_token="") == reference_body([], next_token="")


def test_a_callback_gets_the_job_detail_as_an_element() -> None:
    for subject in shapes():
        root = etree.Element("Response")
        detail = jobxml.job_detail(root, subject)

        assert detail.getparent() is root
        assert detail.findtext("JobId") == subject.job_id
