"""XML in and out of CI and COS, with lxml and a parser that resolves nothing and fetches nothing.

Parsing is tolerant where the wire reference is uncertain: either PicProcessResult shape,
`BucketId` or `Bucket`, `Etag` or `ETag`, absent TotalCount or NextToken, one element or many.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote

from lxml import etree

from orchestrator.ci.models import (
    DescribeResult,
    JobDetail,
    JobPage,
    JobRequest,
    ObjectEntry,
    ObjectPage,
    PicResult,
    Queue,
    QueuePage,
)
from orchestrator.exceptions import ResponseError, ServiceError

__all__ = [
    "build_queue_update",
    "build_submit",
    "parse_describe",
    "parse_document",
    "parse_error",
    "parse_job_page",
    "parse_object_page",
    "parse_queue",
    "parse_queue_page",
    "parse_submit",
]

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    huge_tree=False,
    load_dtd=False,
    dtd_validation=False,
    remove_comments=True,
    remove_pis=True,
)

Element = etree._Element

# The first tag that is not a declaration, comment or processing instruction: the root's.
_FIRST_ELEMENT = re.compile(rb"<[^!?]")


def parse_document(body: bytes) -> Element:
    """Parse an answer body; a DOCTYPE (the vehicle of entity attacks) is refused outright."""
    if not body.strip():
        raise ResponseError("empty response body where XML was expected")
    # Refused before libxml2 reads the DTD at all; the check after parsing catches the rest.
    first = _FIRST_ELEMENT.search(body)
    if b"<!DOCTYPE" in body[: len(body) if first is None else first.start()]:
        raise ResponseError("refused XML response carrying a DOCTYPE")
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise ResponseError(f"malformed XML in response: {_one_line(exc.msg)}") from None
    if root is None:
        raise ResponseError("empty XML document in response")
    if getattr(root.getroottree().docinfo, "doctype", ""):
        raise ResponseError("refused XML response carrying a DOCTYPE")
    return root


def _one_line(text: str, limit: int = 300) -> str:
    """Server-supplied text fit for a one-line message: whitespace runs collapsed, length capped."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- reading helpers: case-insensitive local names, so Etag/ETag and namespaces both work --


@functools.lru_cache(maxsize=512)
def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1].lower()


def _local(el: Element) -> str:
    tag = el.tag
    return _local_name(tag) if isinstance(tag, str) else ""


def _name(el: Element) -> str:
    return str(etree.QName(el).localname)


def _children(el: Element, name: str) -> Iterator[Element]:
    wanted = name.lower()
    return (child for child in el if _local(child) == wanted)


def _child(el: Element | None, *names: str) -> Element | None:
    if el is None:
        return None
    for name in names:
        for child in _children(el, name):
            return child
    return None


def _text(el: Element | None, *names: str) -> str | None:
    child = _child(el, *names)
    if child is None:
        return None
    return (child.text or "").strip()


def _key(el: Element | None, *names: str) -> str | None:
    """An object key: exactly as sent, since spaces at either end are part of the key."""
    child = _child(el, *names)
    return None if child is None else child.text or ""


def _int(el: Element | None, *names: str) -> int | None:
    value = _text(el, *names)
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _time(value: str | None) -> str | None:
    return None if value in (None, "", "-") else value


# -- building --


def _sub(parent: Element, tag: str, text: str | None = None) -> Element:
    el = etree.SubElement(parent, tag)
    if text is not None:
        el.text = text
    return el


def build_submit(req: JobRequest) -> bytes:
    root = etree.Element("Request")
    _sub(root, "Tag", "PicProcess")
    _sub(_sub(root, "Input"), "Object", req.input_object)
    op = _sub(root, "Operation")
    if req.template_id:
        _sub(op, "TemplateId", req.template_id)
    else:
        pic = _sub(op, "PicProcess")
        _sub(pic, "IsPicInfo", "true" if req.is_pic_info else "false")
        _sub(pic, "ProcessRule", req.process_rule or "")
    out = _sub(op, "Output")
    _sub(out, "Region", req.output_region)
    _sub(out, "Bucket", req.output_bucket)
    _sub(out, "Object", req.output_object)
    if req.user_data is not None:
        _sub(op, "UserData", req.user_data)
    if req.job_level is not None:
        _sub(op, "JobLevel", str(req.job_level))
    if req.queue_id:
        _sub(root, "QueueId", req.queue_id)
    if req.callback:
        _sub(root, "CallBack", req.callback)
    if req.callback_format:
        _sub(root, "CallBackFormat", req.callback_format)
    if req.callback_type:
        _sub(root, "CallBackType", req.callback_type)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8"))


def build_queue_update(name: str, state: str, notify: Mapping[str, str] | None = None) -> bytes:
    root = etree.Element("Request")
    _sub(root, "Name", name)
    _sub(root, "State", state)
    cfg = _sub(root, "NotifyConfig")
    for key, value in (notify or {"State": "Off"}).items():
        _sub(cfg, key, value)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8"))


# -- parsing answers --


def _pic_result(op: Element | None) -> PicResult | None:
    res = _child(op, "PicProcessResult")
    if res is None:
        return None
    upload = _child(res, "UploadResult")
    if upload is not None:  # the documented UploadResult shape
        original = _child(upload, "OriginalInfo")
        obj = _child(_child(upload, "ProcessResults"), "Object")
        return PicResult(
            object_name=_key(obj, "Key"),
            format=_text(obj, "Format"),
            width=_int(obj, "Width"),
            height=_int(obj, "Height"),
            size=_int(obj, "Size"),
            quality=_int(obj, "Quality"),
            etag=_text(obj, "ETag") or None,
            original=_image_info(original),
        )
    processed = _child(res, "ProcessResult")  # the flat shape of every example payload
    return PicResult(
        object_name=_key(res, "ObjectName"),
        format=_text(processed, "Format"),
        width=_int(processed, "Width"),
        height=_int(processed, "Height"),
        size=_int(processed, "Size"),
        quality=_int(processed, "Quality"),
        etag=_text(processed, "ETag") or None,
        original=_image_info(_child(res, "OriginalInfo")),
    )


def _image_info(original: Element | None) -> dict[str, Any] | None:
    if original is None:
        return None
    info = _child(original, "ImageInfo")
    out: dict[str, Any] = {}
    etag = _text(original, "ETag")
    if etag:
        out["etag"] = etag
    for name in ("Format", "Width", "Height", "Quality", "Ave", "Orientation"):
        value = _text(info, name)
        if value:
            # isascii: '²' is a digit to isdigit() but not to int(); 18 digits fit any int64.
            small = value.isascii() and value.isdigit() and len(value) <= 18
            out[name.lower()] = int(value) if small else value
    return out or None


def _job(el: Element) -> JobDetail:
    job_id = _text(el, "JobId")
    if not job_id:
        raise ResponseError("JobsDetail without a JobId in response")
    inp = _child(el, "Input")
    op = _child(el, "Operation")
    out = _child(op, "Output")
    return JobDetail(
        job_id=job_id,
        state=_text(el, "State") or "",
        code=_text(el, "Code") or "",
        message=_text(el, "Message") or "",
        queue_id=_text(el, "QueueId") or "",
        input_bucket=_text(inp, "BucketId", "Bucket") or "",
        input_object=_key(inp, "Object") or "",
        output_bucket=_text(out, "Bucket") or "",
        output_region=_text(out, "Region") or "",
        output_object=_key(out, "Object") or "",
        creation_time=_time(_text(el, "CreationTime")),
        start_time=_time(_text(el, "StartTime")),
        end_time=_time(_text(el, "EndTime")),
        job_level=_int(op, "JobLevel"),
        user_data=_text(op, "UserData"),
        result=_pic_result(op),
    )


def _id_list(root: Element, name: str) -> list[str]:
    ids: list[str] = []
    for el in _children(root, name):
        ids.extend(part.strip() for part in (el.text or "").split(",") if part.strip())
    return ids


def parse_submit(body: bytes) -> JobDetail:
    jobs = [_job(el) for el in _children(parse_document(body), "JobsDetail")]
    if not jobs:
        raise ResponseError("submit answer carries no JobsDetail")
    return jobs[0]


def parse_describe(body: bytes) -> DescribeResult:
    root = parse_document(body)
    return DescribeResult(
        jobs=[_job(el) for el in _children(root, "JobsDetail")],
        missing=_id_list(root, "NonExistJobIds"),
    )


def parse_job_page(body: bytes) -> JobPage:
    root = parse_document(body)
    return JobPage(
        jobs=[_job(el) for el in _children(root, "JobsDetail")],
        next_token=_text(root, "NextToken") or None,
    )


def _queue(el: Element) -> Queue:
    notify = _child(el, "NotifyConfig")
    return Queue(
        queue_id=_text(el, "QueueId") or "",
        name=_text(el, "Name") or "",
        state=_text(el, "State") or "",
        max_size=_int(el, "MaxSize"),
        max_concurrent=_int(el, "MaxConcurrent"),
        category=_text(el, "Category"),
        create_time=_text(el, "CreateTime"),
        update_time=_text(el, "UpdateTime"),
        notify={} if notify is None else {_name(c): (c.text or "") for c in notify if _local(c)},
    )


def parse_queue_page(body: bytes) -> QueuePage:
    root = parse_document(body)
    return QueuePage(
        queues=[_queue(el) for el in _children(root, "QueueList")],
        total_count=_int(root, "TotalCount"),
        missing=_id_list(root, "NonExistPIDs"),
    )


def parse_queue(body: bytes) -> Queue:
    queue = _child(parse_document(body), "Queue", "QueueList")
    if queue is None:
        raise ResponseError("queue update answer carries no Queue")
    return _queue(queue)


def parse_object_page(body: bytes) -> ObjectPage:
    root = parse_document(body)
    encoded = (_text(root, "EncodingType") or "").lower() == "url"

    def decode(value: str | None) -> str | None:
        return unquote(value) if encoded and value is not None else value

    entries = []
    for el in _children(root, "Contents"):
        key = decode(_key(el, "Key"))
        if key is None:
            raise ResponseError("listing entry without a Key")
        entries.append(
            ObjectEntry(
                key=key,
                size=_int(el, "Size"),
                etag=(_text(el, "ETag") or "").strip('"') or None,
                last_modified=_text(el, "LastModified") or None,
                storage_class=_text(el, "StorageClass") or None,
            )
        )
    prefixes = [decode(_text(el, "Prefix")) or "" for el in _children(root, "CommonPrefixes")]
    truncated = (_text(root, "IsTruncated") or "false").lower() == "true"
    next_marker = decode(_text(root, "NextMarker")) or None
    if truncated and next_marker is None and entries:
        next_marker = entries[-1].key  # S3 semantics when NextMarker is left out
    return ObjectPage(entries, prefixes, truncated, next_marker)


# -- errors --


def parse_error(
    status: int, body: bytes, content_type: str, retry_after: float | None = None
) -> ServiceError:
    """One typed error from any error answer: CI's or COS's XML, JSON, or a proxy's HTML page."""
    code, message, request_id = f"HTTP{status}", "", ""
    if "json" in content_type and body.lstrip().startswith(b"{"):
        try:
            data = json.loads(body)
            err = data.get("Error", data) if isinstance(data, dict) else {}
            code = str(err.get("Code") or err.get("code") or code)
            message = str(err.get("Message") or err.get("message") or "")
            request_id = str(err.get("RequestId") or err.get("request_id") or "")
        except (ValueError, AttributeError, RecursionError):
            message = "unparseable JSON error body"
    elif body.strip():
        try:
            root = parse_document(body)
            el = root if _local(root) == "error" else _child(root, "Error")
            if el is None:
                message = f"unexpected <{_local(root)}> error body"
            else:
                code = _text(el, "Code") or code
                message = _text(el, "Message") or ""
                request_id = _text(el, "RequestId") or ""
        except ResponseError:
            kind = content_type.split(";")[0].strip() or "unknown content type"
            message = f"non-XML error body ({kind})"
    return ServiceError(
        status,
        _one_line(code, 100),
        _one_line(message),
        request_id=_one_line(request_id, 100),
        retry_after=retry_after,
    )
