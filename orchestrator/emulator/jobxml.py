"""The JobsDetail answers of submit, describe and list, and the job in a callback.

Answers are written as text: as an element tree, a submit answer cost as much as the rest of the
request. The element tree stays for callbacks, which need one, and for the rare answer echoing a
CallBackMqConfig with namespaced tags, whose prefixes lxml numbers across the whole document. Both
write the same bytes (tests/emulator/test_job_text.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from lxml import etree

from orchestrator.emulator.imaging import ImageInfo
from orchestrator.emulator.model import Job, PicResult, ci_time
from orchestrator.emulator.wire import sub_element, to_bytes, xml_text

__all__ = ["job_detail", "jobs_body"]

_Element = etree._Element
_DECLARATION = "<?xml version='1.0' encoding='UTF-8'?>\n"


# ---------------------------------------------------------------------- as text


def _leaf(tag: str, text: str | int | None) -> str:
    if text is None:
        return f"<{tag}/>"
    return f"<{tag}>{text if isinstance(text, int) else xml_text(text)}</{tag}>"


def _node(tag: str, inner: str) -> str:
    return f"<{tag}>{inner}</{tag}>" if inner else f"<{tag}/>"


def _image_info(info: ImageInfo) -> str:
    return _node(
        "ImageInfo",
        _leaf("Ave", info.ave)
        + _leaf("Format", info.format)
        + _leaf("Height", info.height)
        + _leaf("Orientation", info.orientation)
        + _leaf("Quality", info.quality)
        + _leaf("Width", info.width),
    )


def _pic_result(result: PicResult) -> str:
    original = ""
    if result.original is not None:
        original = _node(
            "OriginalInfo", _leaf("Etag", result.original_etag) + _image_info(result.original)
        )
    info = result.info
    processed = _node(
        "ProcessResult",
        "<Etag></Etag>"
        + _leaf("Format", info.format)
        + _leaf("Height", info.height)
        + _leaf("Quality", info.quality)
        + _leaf("Size", result.size)
        + _leaf("Width", info.width),
    )
    return _node("PicProcessResult", _leaf("ObjectName", result.object_name) + original + processed)


def _operation(job: Job) -> str:
    request = job.request
    parts = []
    if request.template_id is not None:
        parts.append(_leaf("TemplateId", request.template_id))
        parts.append(_leaf("TemplateName", job.template_name or ""))
    if request.has_pic_process:
        pic = ""
        if request.is_pic_info is not None:
            pic += _leaf("IsPicInfo", request.is_pic_info)
        if request.process_rule is not None:
            pic += _leaf("ProcessRule", request.process_rule)
        parts.append(_node("PicProcess", pic))
    output = request.output
    parts.append(
        _node(
            "Output",
            _leaf("Region", output.region)
            + _leaf("Bucket", output.bucket)
            + _leaf("Object", output.object),
        )
    )
    if request.user_data is not None:
        parts.append(_leaf("UserData", request.user_data))
    parts.append(_leaf("JobLevel", request.job_level))
    if job.result is not None:
        parts.append(_pic_result(job.result))
    return _node("Operation", "".join(parts))


def _job_detail(job: Job) -> str:
    request = job.request
    parts = [
        _leaf("Code", job.code),
        _leaf("Message", job.message),
        _leaf("JobId", job.job_id),
        _leaf("State", job.state.value),
        _leaf("CreationTime", ci_time(job.creation_time)),
        _leaf("StartTime", ci_time(job.start_time)),
        _leaf("EndTime", ci_time(job.end_time)),
        _leaf("QueueId", job.queue_id),
        _leaf("Tag", request.tag),
        _node(
            "Input",
            _leaf("BucketId", job.bucket)
            + _leaf("Object", request.input_object)
            + _leaf("Region", job.region),
        ),
        _operation(job),
    ]
    for tag, value in (
        ("CallBack", request.callback),
        ("CallBackFormat", request.callback_format),
        ("CallBackType", request.callback_type),
    ):
        if value is not None:
            parts.append(_leaf(tag, value))
    if request.callback_mq_config is not None:
        mq = "".join(_leaf(tag, value) for tag, value in request.callback_mq_config)
        parts.append(_node("CallBackMqConfig", mq))
    return _node("JobsDetail", "".join(parts))


def jobs_body(
    jobs: Iterable[Job], *, missing: Iterable[str] = (), next_token: str | None = None
) -> bytes:
    """`<Response>` with a JobsDetail per job, NonExistJobIds per unknown id, and NextToken."""
    jobs = list(jobs)
    if any(_namespaced(job) for job in jobs):
        return _jobs_body_element(jobs, missing, next_token)
    parts = [_job_detail(job) for job in jobs]
    parts.extend(_leaf("NonExistJobIds", job_id) for job_id in missing)
    if next_token is not None:
        parts.append(_leaf("NextToken", next_token))
    return (_DECLARATION + _node("Response", "".join(parts))).encode()


def _namespaced(job: Job) -> bool:
    config = job.request.callback_mq_config
    return config is not None and any(tag.startswith("{") for tag, _ in config)


# ---------------------------------------------------------------------- as an element tree


def _image_info_element(parent: _Element, info: ImageInfo) -> None:
    node = sub_element(parent, "ImageInfo")
    for tag, value in (
        ("Ave", info.ave),
        ("Format", info.format),
        ("Height", info.height),
        ("Orientation", info.orientation),
        ("Quality", info.quality),
        ("Width", info.width),
    ):
        sub_element(node, tag, value)


def _pic_result_element(parent: _Element, result: PicResult) -> None:
    node = sub_element(parent, "PicProcessResult")
    sub_element(node, "ObjectName", result.object_name)
    if result.original is not None:
        original = sub_element(node, "OriginalInfo")
        sub_element(original, "Etag", result.original_etag)
        _image_info_element(original, result.original)
    processed = sub_element(node, "ProcessResult")
    sub_element(processed, "Etag", "")
    for tag, value in (
        ("Format", result.info.format),
        ("Height", result.info.height),
        ("Quality", result.info.quality),
        ("Size", result.size),
        ("Width", result.info.width),
    ):
        sub_element(processed, tag, value)


def _job_detail_element(parent: _Element, job: Job) -> None:
    request = job.request
    node = sub_element(parent, "JobsDetail")
    sub_element(node, "Code", job.code)
    sub_element(node, "Message", job.message)
    sub_element(node, "JobId", job.job_id)
    sub_element(node, "State", job.state.value)
    sub_element(node, "CreationTime", ci_time(job.creation_time))
    sub_element(node, "StartTime", ci_time(job.start_time))
    sub_element(node, "EndTime", ci_time(job.end_time))
    sub_element(node, "QueueId", job.queue_id)
    sub_element(node, "Tag", request.tag)
    source = sub_element(node, "Input")
    sub_element(source, "BucketId", job.bucket)
    sub_element(source, "Object", request.input_object)
    sub_element(source, "Region", job.region)
    operation = sub_element(node, "Operation")
    if request.template_id is not None:
        sub_element(operation, "TemplateId", request.template_id)
        sub_element(operation, "TemplateName", job.template_name or "")
    if request.has_pic_process:
        pic = sub_element(operation, "PicProcess")
        if request.is_pic_info is not None:
            sub_element(pic, "IsPicInfo", request.is_pic_info)
        if request.process_rule is not None:
            sub_element(pic, "ProcessRule", request.process_rule)
    output = sub_element(operation, "Output")
    sub_element(output, "Region", request.output.region)
    sub_element(output, "Bucket", request.output.bucket)
    sub_element(output, "Object", request.output.object)
    if request.user_data is not None:
        sub_element(operation, "UserData", request.user_data)
    sub_element(operation, "JobLevel", request.job_level)
    if job.result is not None:
        _pic_result_element(operation, job.result)
    for tag, value in (
        ("CallBack", request.callback),
        ("CallBackFormat", request.callback_format),
        ("CallBackType", request.callback_type),
    ):
        if value is not None:
            sub_element(node, tag, value)
    if request.callback_mq_config is not None:
        mq = sub_element(node, "CallBackMqConfig")
        for tag, value in request.callback_mq_config:
            sub_element(mq, tag, value)


def job_detail(parent: _Element, job: Job) -> _Element:
    """Append the job's `<JobsDetail>` as describe answers it to `parent`, and return it."""
    _job_detail_element(parent, job)
    return parent[-1]


def _jobs_body_element(jobs: list[Job], missing: Iterable[str], next_token: str | None) -> bytes:
    root = etree.Element("Response")
    for job in jobs:
        _job_detail_element(root, job)
    for job_id in missing:
        sub_element(root, "NonExistJobIds", job_id)
    if next_token is not None:
        sub_element(root, "NextToken", next_token)
    return to_bytes(root)
