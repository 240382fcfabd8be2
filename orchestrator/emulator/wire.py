"""XML in and out: request bodies parsed safely, response bodies built with lxml."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote

from lxml import etree

from orchestrator.emulator.errors import ApiError, InvalidArgument, InvalidContent, MissingContent
from orchestrator.emulator.imaging import ImageInfo
from orchestrator.emulator.model import (
    Job,
    JobRequest,
    NotifyConfig,
    Output,
    PicResult,
    Queue,
    QueueState,
    ci_time,
)
from orchestrator.emulator.store import Bucket, Listing

__all__ = [
    "error_body",
    "job_detail",
    "job_request",
    "jobs_body",
    "list_objects_body",
    "parse_body",
    "queue_update",
    "queues_body",
    "to_bytes",
    "updated_queue_body",
]

_Element = etree._Element


def to_bytes(root: _Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


# One parser for every request: making one costs more than parsing a small body. Requests are
# parsed on the event loop's thread only.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)
_DECLARATION = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _add(parent: _Element, tag: str, text: str | int | None = None) -> _Element:
    child = etree.SubElement(parent, tag)
    if isinstance(text, int):
        child.text = str(text)
    elif text is not None:
        # Echoed client input (an id from the path, say) may hold what XML cannot carry.
        value = str(text)
        child.text = _NOT_XML.sub("\ufffd", value) if _NOT_XML.search(value) else value
    return child


# ---------------------------------------------------------------------- requests


def parse_body(body: bytes) -> _Element:
    """The root of an XML request body; MissingContent or InvalidContent otherwise."""
    if not body.strip():
        raise MissingContent()
    if _DECLARATION.search(body):
        raise InvalidContent("a DOCTYPE or ENTITY declaration is not allowed in the request body")
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise InvalidContent(f"the request body is not well-formed XML: {exc}") from None
    if root.tag != "Request":
        raise InvalidContent(f"the root element must be Request, not {root.tag}")
    return root


def _text(root: _Element, path: str) -> str | None:
    """The text of the element at `path` exactly as sent ('' when empty), None when absent."""
    found = root.find(path)
    if found is None:
        return None
    return found.text or ""


def _required(root: _Element, path: str) -> str:
    value = _text(root, path)
    if value is None or not value.strip():
        raise InvalidArgument(f"{path} is required")
    return value


def _optional(root: _Element, path: str) -> str | None:
    value = _text(root, path)
    return value.strip() if value is not None else None


def job_request(root: _Element) -> JobRequest:
    """A PicProcess submission from `<Request>`; the backend validates the values."""
    level = _optional(root, "Operation/JobLevel")
    try:
        job_level = int(level) if level else 0
    except ValueError:
        raise InvalidArgument("Operation/JobLevel must be 0, 1 or 2") from None
    pic_process = root.find("Operation/PicProcess")
    mq = root.find("CallBackMqConfig")
    return JobRequest(
        tag=_required(root, "Tag").strip(),
        input_object=_required(root, "Input/Object"),
        output=Output(
            region=_required(root, "Operation/Output/Region").strip(),
            bucket=_required(root, "Operation/Output/Bucket").strip(),
            object=_required(root, "Operation/Output/Object"),
        ),
        queue_id=_optional(root, "QueueId") or None,
        template_id=_optional(root, "Operation/TemplateId") or None,
        has_pic_process=pic_process is not None,
        is_pic_info=_optional(root, "Operation/PicProcess/IsPicInfo") or None,
        process_rule=_optional(root, "Operation/PicProcess/ProcessRule") or None,
        job_level=job_level,
        user_data=_text(root, "Operation/UserData"),
        callback=_optional(root, "CallBack"),
        callback_format=_optional(root, "CallBackFormat"),
        callback_type=_optional(root, "CallBackType"),
        callback_mq_config=(
            tuple(
                (child.tag, (child.text or "").strip())
                for child in mq
                if isinstance(child.tag, str)
            )
            if mq is not None
            else None
        ),
    )


def _choice(value: str | None, allowed: tuple[str, ...], what: str, default: str) -> str:
    if value is None or value == "":
        return default
    if value not in allowed:
        raise InvalidArgument(f"{what} must be one of {', '.join(allowed)}")
    return value


def queue_update(root: _Element) -> tuple[str, QueueState, NotifyConfig]:
    """Name, State and NotifyConfig of `PUT /picqueue/<id>`."""
    name = _required(root, "Name")
    state = QueueState(_choice(_required(root, "State").strip(), ("Active", "Paused"), "State", ""))
    if root.find("NotifyConfig") is None:
        raise InvalidArgument("NotifyConfig is required")
    notify = NotifyConfig(
        url=_optional(root, "NotifyConfig/Url") or "",
        state=_choice(
            _optional(root, "NotifyConfig/State"), ("On", "Off"), "NotifyConfig/State", "Off"
        ),
        type=_choice(
            _optional(root, "NotifyConfig/Type"), ("Url", "TDMQ"), "NotifyConfig/Type", "Url"
        ),
        event=_optional(root, "NotifyConfig/Event") or "",
        result_format=_choice(
            _optional(root, "NotifyConfig/ResultFormat"),
            ("XML", "JSON"),
            "NotifyConfig/ResultFormat",
            "XML",
        ),
        mq_mode=_optional(root, "NotifyConfig/MqMode") or "",
        mq_region=_optional(root, "NotifyConfig/MqRegion") or "",
        mq_name=_optional(root, "NotifyConfig/MqName") or "",
    )
    if notify.state == "On":
        if not notify.event:
            raise InvalidArgument("NotifyConfig/Event is required when notifications are On")
        if root.find("NotifyConfig/Type") is None:
            raise InvalidArgument("NotifyConfig/Type is required when notifications are On")
        if notify.type == "Url" and not notify.url:
            raise InvalidArgument("NotifyConfig/Url is required when Type is Url")
        if notify.type == "TDMQ" and not notify.mq_name:
            raise InvalidArgument("NotifyConfig/MqName is required when Type is TDMQ")
    return name, state, notify


# ---------------------------------------------------------------------- jobs


def _image_info(parent: _Element, info: ImageInfo) -> None:
    node = _add(parent, "ImageInfo")
    for tag, value in (
        ("Ave", info.ave),
        ("Format", info.format),
        ("Height", info.height),
        ("Orientation", info.orientation),
        ("Quality", info.quality),
        ("Width", info.width),
    ):
        _add(node, tag, value)


def _pic_result(parent: _Element, result: PicResult) -> None:
    node = _add(parent, "PicProcessResult")
    _add(node, "ObjectName", result.object_name)
    if result.original is not None:
        original = _add(node, "OriginalInfo")
        _add(original, "Etag", result.original_etag)
        _image_info(original, result.original)
    processed = _add(node, "ProcessResult")
    _add(processed, "Etag", "")
    for tag, value in (
        ("Format", result.info.format),
        ("Height", result.info.height),
        ("Quality", result.info.quality),
        ("Size", result.size),
        ("Width", result.info.width),
    ):
        _add(processed, tag, value)


def _job_detail(parent: _Element, job: Job) -> None:
    request = job.request
    node = _add(parent, "JobsDetail")
    _add(node, "Code", job.code)
    _add(node, "Message", job.message)
    _add(node, "JobId", job.job_id)
    _add(node, "State", job.state.value)
    _add(node, "CreationTime", ci_time(job.creation_time))
    _add(node, "StartTime", ci_time(job.start_time))
    _add(node, "EndTime", ci_time(job.end_time))
    _add(node, "QueueId", job.queue_id)
    _add(node, "Tag", request.tag)
    source = _add(node, "Input")
    _add(source, "BucketId", job.bucket)
    _add(source, "Object", request.input_object)
    _add(source, "Region", job.region)
    operation = _add(node, "Operation")
    if request.template_id is not None:
        _add(operation, "TemplateId", request.template_id)
        _add(operation, "TemplateName", job.template_name or "")
    if request.has_pic_process:
        pic = _add(operation, "PicProcess")
        if request.is_pic_info is not None:
            _add(pic, "IsPicInfo", request.is_pic_info)
        if request.process_rule is not None:
            _add(pic, "ProcessRule", request.process_rule)
    output = _add(operation, "Output")
    _add(output, "Region", request.output.region)
    _add(output, "Bucket", request.output.bucket)
    _add(output, "Object", request.output.object)
    if request.user_data is not None:
        _add(operation, "UserData", request.user_data)
    _add(operation, "JobLevel", request.job_level)
    if job.result is not None:
        _pic_result(operation, job.result)
    for tag, value in (
        ("CallBack", request.callback),
        ("CallBackFormat", request.callback_format),
        ("CallBackType", request.callback_type),
    ):
        if value is not None:
            _add(node, tag, value)
    if request.callback_mq_config is not None:
        mq = _add(node, "CallBackMqConfig")
        for tag, value in request.callback_mq_config:
            _add(mq, tag, value)


def job_detail(parent: _Element, job: Job) -> _Element:
    """Append the job's `<JobsDetail>` as describe answers it to `parent`, and return it."""
    _job_detail(parent, job)
    return parent[-1]


def jobs_body(
    jobs: Iterable[Job], *, missing: Iterable[str] = (), next_token: str | None = None
) -> bytes:
    """`<Response>` with a JobsDetail per job, NonExistJobIds per unknown id, and NextToken."""
    root = etree.Element("Response")
    for job in jobs:
        _job_detail(root, job)
    for job_id in missing:
        _add(root, "NonExistJobIds", job_id)
    if next_token is not None:
        _add(root, "NextToken", next_token)
    return to_bytes(root)


# ---------------------------------------------------------------------- queues


def _queue(parent: _Element, tag: str, queue: Queue) -> None:
    node = _add(parent, tag)
    _add(node, "QueueId", queue.queue_id)
    _add(node, "Name", queue.name)
    _add(node, "State", queue.state.value)
    notify = _add(node, "NotifyConfig")
    config = queue.notify
    for child, value in (
        ("Url", config.url),
        ("Event", config.event),
        ("Type", config.type),
        ("State", config.state),
        ("ResultFormat", config.result_format),
        ("MqMode", config.mq_mode),
        ("MqRegion", config.mq_region),
        ("MqName", config.mq_name),
    ):
        if value or child in ("Url", "Event", "Type", "State", "ResultFormat"):
            _add(notify, child, value)
    _add(node, "MaxSize", queue.max_size)
    _add(node, "MaxConcurrent", queue.max_concurrent)
    _add(node, "UpdateTime", ci_time(queue.update_time))
    _add(node, "CreateTime", ci_time(queue.create_time))
    _add(node, "Category", "PicProcessing")


def queues_body(
    request_id: str,
    queues: list[Queue],
    missing: list[str],
    paging: tuple[int, int, int] | None,
) -> bytes:
    """`GET /picqueue`; `paging` is (TotalCount, PageNumber, PageSize) when the client paged."""
    root = etree.Element("Response")
    _add(root, "RequestId", request_id)
    if paging is not None:
        for tag, value in zip(("TotalCount", "PageNumber", "PageSize"), paging, strict=True):
            _add(root, tag, value)
    for queue in queues:
        _queue(root, "QueueList", queue)
    for queue_id in missing:
        _add(root, "NonExistPIDs", queue_id)
    return to_bytes(root)


def updated_queue_body(request_id: str, queue: Queue) -> bytes:
    root = etree.Element("Response")
    _add(root, "RequestId", request_id)
    _queue(root, "Queue", queue)
    return to_bytes(root)


# ---------------------------------------------------------------------- COS


def url_encode(text: str) -> str:
    """encoding-type=url: UTF-8 percent-encoding of all but unreserved characters and '/'."""
    if _URL_SAFE.fullmatch(text):  # most keys: nothing to encode, and quote() costs 5 µs
        return text
    return quote(text, safe="/-_.~")


_URL_SAFE = re.compile(r"[A-Za-z0-9/_.~-]*")


def list_objects_body(
    bucket: Bucket,
    listing: Listing,
    *,
    prefix: str,
    delimiter: str,
    marker: str,
    max_keys: int,
    url: bool,
) -> bytes:
    def enc(text: str) -> str:
        return url_encode(text) if url else text

    root = etree.Element("ListBucketResult")
    _add(root, "Name", bucket.name)
    if url:
        _add(root, "EncodingType", "url")
    _add(root, "Prefix", enc(prefix))
    _add(root, "Marker", enc(marker))
    _add(root, "MaxKeys", max_keys)
    if delimiter:
        _add(root, "Delimiter", enc(delimiter))
    _add(root, "IsTruncated", "true" if listing.truncated else "false")
    if listing.truncated:
        _add(root, "NextMarker", enc(listing.next_marker))
    for common in listing.common_prefixes:
        _add(_add(root, "CommonPrefixes"), "Prefix", enc(common))
    # A page holds up to 1,000 entries: written as text, a tenth of the cost of elements.
    appid = _xml_text(bucket.appid)
    owner = f"<Owner><ID>{appid}</ID><DisplayName>{appid}</DisplayName></Owner>"
    contents = "".join(
        f"<Contents><Key>{_xml_text(enc(meta.key))}</Key>"
        f"<LastModified>{meta.last_modified}</LastModified><ETag>{_xml_text(meta.etag)}</ETag>"
        f"<Size>{meta.size}</Size>{owner}<StorageClass>STANDARD</StorageClass></Contents>"
        for meta in listing.contents
    )
    head = to_bytes(root).removesuffix(b"</ListBucketResult>")
    return head + contents.encode() + b"</ListBucketResult>"


def _xml_text(text: str) -> str:
    """`text` as XML character data, as lxml writes it (what XML cannot carry replaced)."""
    if _PLAIN.fullmatch(text):  # most keys and every ETag: written as they are
        return text
    text = _NOT_XML.sub("\ufffd", text)
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


# Text that _xml_text leaves as it is: printable ASCII but the three it escapes.
_PLAIN = re.compile(r"[ !\x22-%'-;=?-~]*")


# ---------------------------------------------------------------------- errors


def error_body(
    error: ApiError, *, cos: bool, request_id: str, trace_id: str, resource: str
) -> bytes:
    """CI's `<Error>` has no Resource (ci-api.md §7.1); COS's has one."""
    root = etree.Element("Error")
    _add(root, "Code", error.code)
    _add(root, "Message", error.message)
    if cos:
        _add(root, "Resource", resource)
    _add(root, "RequestId", request_id)
    _add(root, "TraceId", trace_id)
    return to_bytes(root)
