"""XML in and out: request bodies parsed safely, response bodies built with lxml (job answers:
jobxml.py)."""

from __future__ import annotations

import re
from urllib.parse import quote

from lxml import etree

from orchestrator.emulator.errors import ApiError, InvalidArgument, InvalidContent, MissingContent
from orchestrator.emulator.model import (
    JobRequest,
    NotifyConfig,
    Output,
    Queue,
    QueueState,
    ci_time,
)
from orchestrator.emulator.store import Bucket, Listing

__all__ = [
    "error_body",
    "job_request",
    "list_objects_body",
    "parse_body",
    "queue_update",
    "queues_body",
    "sub_element",
    "to_bytes",
    "updated_queue_body",
    "xml_text",
]

_Element = etree._Element


def to_bytes(root: _Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


# One parser for every request: making one costs more than parsing a small body. Requests are
# parsed on the event loop's thread only.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False)
_DECLARATION = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def sub_element(parent: _Element, tag: str, text: str | int | None = None) -> _Element:
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


_Found = dict[str, _Element]


def _elements(root: _Element, depth: int = 3) -> _Found:
    """The first element at every tag path (`Operation/Output/Region`) up to `depth` levels
    under `root`, as `root.find(path)` finds it: one walk rather than a search per field."""
    found: _Found = {}
    _walk(root, "", depth, found)
    return found


def _walk(node: _Element, prefix: str, depth: int, found: _Found) -> None:
    for child in node:
        tag = child.tag
        if not isinstance(tag, str):  # comments and processing instructions
            continue
        path = prefix + tag
        if path not in found:
            found[path] = child
        if depth > 1 and len(child):
            _walk(child, path + "/", depth - 1, found)


def _text(found: _Found, path: str) -> str | None:
    """The text of the element at `path` exactly as sent ('' when empty), None when absent."""
    element = found.get(path)
    if element is None:
        return None
    return element.text or ""


def _required(found: _Found, path: str) -> str:
    value = _text(found, path)
    if value is None or not value.strip():
        raise InvalidArgument(f"{path} is required")
    return value


def _optional(found: _Found, path: str) -> str | None:
    value = _text(found, path)
    return value.strip() if value is not None else None


def job_request(root: _Element) -> JobRequest:
    """A PicProcess submission from `<Request>`; the backend validates the values."""
    found = _elements(root)
    level = _optional(found, "Operation/JobLevel")
    try:
        job_level = int(level) if level else 0
    except ValueError:
        raise InvalidArgument("Operation/JobLevel must be 0, 1 or 2") from None
    pic_process = found.get("Operation/PicProcess")
    mq = found.get("CallBackMqConfig")
    return JobRequest(
        tag=_required(found, "Tag").strip(),
        input_object=_required(found, "Input/Object"),
        output=Output(
            region=_required(found, "Operation/Output/Region").strip(),
            bucket=_required(found, "Operation/Output/Bucket").strip(),
            object=_required(found, "Operation/Output/Object"),
        ),
        queue_id=_optional(found, "QueueId") or None,
        template_id=_optional(found, "Operation/TemplateId") or None,
        has_pic_process=pic_process is not None,
        is_pic_info=_optional(found, "Operation/PicProcess/IsPicInfo") or None,
        process_rule=_optional(found, "Operation/PicProcess/ProcessRule") or None,
        job_level=job_level,
        user_data=_text(found, "Operation/UserData"),
        callback=_optional(found, "CallBack"),
        callback_format=_optional(found, "CallBackFormat"),
        callback_type=_optional(found, "CallBackType"),
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
    found = _elements(root)
    name = _required(found, "Name")
    state = QueueState(
        _choice(_required(found, "State").strip(), ("Active", "Paused"), "State", "")
    )
    if "NotifyConfig" not in found:
        raise InvalidArgument("NotifyConfig is required")
    notify = NotifyConfig(
        url=_optional(found, "NotifyConfig/Url") or "",
        state=_choice(
            _optional(found, "NotifyConfig/State"), ("On", "Off"), "NotifyConfig/State", "Off"
        ),
        type=_choice(
            _optional(found, "NotifyConfig/Type"), ("Url", "TDMQ"), "NotifyConfig/Type", "Url"
        ),
        event=_optional(found, "NotifyConfig/Event") or "",
        result_format=_choice(
            _optional(found, "NotifyConfig/ResultFormat"),
            ("XML", "JSON"),
            "NotifyConfig/ResultFormat",
            "XML",
        ),
        mq_mode=_optional(found, "NotifyConfig/MqMode") or "",
        mq_region=_optional(found, "NotifyConfig/MqRegion") or "",
        mq_name=_optional(found, "NotifyConfig/MqName") or "",
    )
    if notify.state == "On":
        if not notify.event:
            raise InvalidArgument("NotifyConfig/Event is required when notifications are On")
        if "NotifyConfig/Type" not in found:
            raise InvalidArgument("NotifyConfig/Type is required when notifications are On")
        if notify.type == "Url" and not notify.url:
            raise InvalidArgument("NotifyConfig/Url is required when Type is Url")
        if notify.type == "TDMQ" and not notify.mq_name:
            raise InvalidArgument("NotifyConfig/MqName is required when Type is TDMQ")
    return name, state, notify


# ---------------------------------------------------------------------- queues


def _queue(parent: _Element, tag: str, queue: Queue) -> None:
    node = sub_element(parent, tag)
    sub_element(node, "QueueId", queue.queue_id)
    sub_element(node, "Name", queue.name)
    sub_element(node, "State", queue.state.value)
    notify = sub_element(node, "NotifyConfig")
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
            sub_element(notify, child, value)
    sub_element(node, "MaxSize", queue.max_size)
    sub_element(node, "MaxConcurrent", queue.max_concurrent)
    sub_element(node, "UpdateTime", ci_time(queue.update_time))
    sub_element(node, "CreateTime", ci_time(queue.create_time))
    sub_element(node, "Category", "PicProcessing")


def queues_body(
    request_id: str,
    queues: list[Queue],
    missing: list[str],
    paging: tuple[int, int, int] | None,
) -> bytes:
    """`GET /picqueue`; `paging` is (TotalCount, PageNumber, PageSize) when the client paged."""
    root = etree.Element("Response")
    sub_element(root, "RequestId", request_id)
    if paging is not None:
        for tag, value in zip(("TotalCount", "PageNumber", "PageSize"), paging, strict=True):
            sub_element(root, tag, value)
    for queue in queues:
        _queue(root, "QueueList", queue)
    for queue_id in missing:
        sub_element(root, "NonExistPIDs", queue_id)
    return to_bytes(root)


def updated_queue_body(request_id: str, queue: Queue) -> bytes:
    root = etree.Element("Response")
    sub_element(root, "RequestId", request_id)
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
    sub_element(root, "Name", bucket.name)
    if url:
        sub_element(root, "EncodingType", "url")
    sub_element(root, "Prefix", enc(prefix))
    sub_element(root, "Marker", enc(marker))
    sub_element(root, "MaxKeys", max_keys)
    if delimiter:
        sub_element(root, "Delimiter", enc(delimiter))
    sub_element(root, "IsTruncated", "true" if listing.truncated else "false")
    if listing.truncated:
        sub_element(root, "NextMarker", enc(listing.next_marker))
    for common in listing.common_prefixes:
        sub_element(sub_element(root, "CommonPrefixes"), "Prefix", enc(common))
    # A page holds up to 1,000 entries: written as text, a tenth of the cost of elements.
    appid = xml_text(bucket.appid)
    owner = f"<Owner><ID>{appid}</ID><DisplayName>{appid}</DisplayName></Owner>"
    contents = "".join(
        f"<Contents><Key>{xml_text(enc(meta.key))}</Key>"
        f"<LastModified>{meta.last_modified}</LastModified><ETag>{xml_text(meta.etag)}</ETag>"
        f"<Size>{meta.size}</Size>{owner}<StorageClass>STANDARD</StorageClass></Contents>"
        for meta in listing.contents
    )
    head = to_bytes(root).removesuffix(b"</ListBucketResult>")
    return head + contents.encode() + b"</ListBucketResult>"


def xml_text(text: str) -> str:
    """`text` as XML character data, as lxml writes it (what XML cannot carry replaced)."""
    if _PLAIN.fullmatch(text):  # most keys and every ETag: written as they are
        return text
    text = _NOT_XML.sub("\ufffd", text)
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
    )


# Text that xml_text leaves as it is: printable ASCII but the three it escapes.
_PLAIN = re.compile(r"[ !\x22-%'-;=?-~]*")


# ---------------------------------------------------------------------- errors


def error_body(
    error: ApiError, *, cos: bool, request_id: str, trace_id: str, resource: str
) -> bytes:
    """CI's `<Error>` has no Resource (ci-api.md §7.1); COS's has one."""
    root = etree.Element("Error")
    sub_element(root, "Code", error.code)
    sub_element(root, "Message", error.message)
    if cos:
        sub_element(root, "Resource", resource)
    sub_element(root, "RequestId", request_id)
    sub_element(root, "TraceId", trace_id)
    return to_bytes(root)
