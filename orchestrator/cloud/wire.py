"""XML in and out of CI and COS, with lxml and a parser that resolves nothing and fetches nothing.

Parsing is tolerant where the wire reference is uncertain: either PicProcessResult shape,
`BucketId` or `Bucket`, `Etag` or `ETag`, absent TotalCount or NextToken, one element or many.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, cast
from urllib.parse import unquote

from lxml import etree

from orchestrator.cloud.bodies import build_submit
from orchestrator.cloud.models import (
    DescribeResult,
    JobDetail,
    JobPage,
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


# Job answers are the hot path (one per submission, one per job described): their fields are
# read from plain dicts of children with lower-cased names, no wrapper objects, no varargs.
_Kids = dict[str, Element]
_NONE: Final[_Kids] = {}


def _kids(el: Element | None) -> _Kids:
    """The children of `el` by lower-cased local name, the first of each, in one pass."""
    by_name: _Kids = {}
    if el is not None:
        for child in el:
            tag = child.tag
            if isinstance(tag, str):
                name = _local_name(tag)
                if name not in by_name:
                    by_name[name] = child
    return by_name


def _of(kids: _Kids, name: str) -> _Kids:
    child = kids.get(name)
    return _NONE if child is None else _kids(child)


def _str(kids: _Kids, name: str) -> str | None:
    child = kids.get(name)
    if child is None:
        return None
    text = child.text
    return text.strip() if text else ""


def _key(kids: _Kids, name: str) -> str | None:
    """An object key: exactly as sent, since spaces at either end are part of the key."""
    child = kids.get(name)
    return None if child is None else child.text or ""


def _num(kids: _Kids, name: str) -> int | None:
    return _int(_str(kids, name))


def _int(value: str | None) -> int | None:
    """A number as `int` reads it; None for none, or text it refuses (including digits such as
    '²' that `str.isdigit` accepts, and more than Python's 4,300 digits)."""
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _child(el: Element | None, *names: str) -> Element | None:
    kids = _kids(el)
    return next((kids[n] for n in map(str.lower, names) if n in kids), None)


def _text(el: Element | None, name: str) -> str | None:
    return _str(_kids(el), name.lower())


def _time(value: str | None) -> str | None:
    return None if value in (None, "", "-") else value


# -- building --


def _sub(parent: Element, tag: str, text: str | None = None) -> Element:
    el = etree.SubElement(parent, tag)
    if text is not None:
        el.text = text
    return el


def build_queue_update(name: str, state: str, notify: Mapping[str, str] | None = None) -> bytes:
    root = etree.Element("Request")
    _sub(root, "Name", name)
    _sub(root, "State", state)
    cfg = _sub(root, "NotifyConfig")
    for key, value in (notify or {"State": "Off"}).items():
        _sub(cfg, key, value)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="utf-8"))


# -- parsing answers --


def _pic_result(op: _Kids) -> PicResult | None:
    res_el = op.get("picprocessresult")
    if res_el is None:
        return None
    res = _kids(res_el)
    upload = res.get("uploadresult")
    if upload is not None:  # the documented UploadResult shape
        up = _kids(upload)
        obj = _of(_of(up, "processresults"), "object")
        return _processed(obj, _key(obj, "key"), up.get("originalinfo"))
    # The flat shape of every example payload.
    return _processed(_of(res, "processresult"), _key(res, "objectname"), res.get("originalinfo"))


def _processed(image: _Kids, object_name: str | None, original: Element | None) -> PicResult:
    return PicResult(
        object_name=object_name,
        format=_str(image, "format"),
        width=_num(image, "width"),
        height=_num(image, "height"),
        size=_num(image, "size"),
        quality=_num(image, "quality"),
        etag=_str(image, "etag") or None,
        original=_image_info(original),
    )


def _image_info(original_el: Element | None) -> dict[str, Any] | None:
    if original_el is None:
        return None
    original = _kids(original_el)
    info = _of(original, "imageinfo")
    out: dict[str, Any] = {}
    etag = _str(original, "etag")
    if etag:
        out["etag"] = etag
    for name in ("format", "width", "height", "quality", "ave", "orientation"):
        value = _str(info, name)
        if value:
            # isascii: '²' is a digit to isdigit() but not to int(); 18 digits fit any int64.
            small = value.isascii() and value.isdigit() and len(value) <= 18
            out[name] = int(value) if small else value
    return out or None


def _job(el: Element) -> JobDetail:
    job = _kids(el)
    job_id = _str(job, "jobid")
    if not job_id:
        raise ResponseError("JobsDetail without a JobId in response")
    inp = _of(job, "input")
    op = _of(job, "operation")
    out = _of(op, "output")
    return JobDetail(
        job_id=job_id,
        state=_str(job, "state") or "",
        code=_str(job, "code") or "",
        message=_str(job, "message") or "",
        queue_id=_str(job, "queueid") or "",
        input_bucket=_str(inp, "bucketid") or _str(inp, "bucket") or "",
        input_object=_key(inp, "object") or "",
        output_bucket=_str(out, "bucket") or "",
        output_region=_str(out, "region") or "",
        output_object=_key(out, "object") or "",
        creation_time=_time(_str(job, "creationtime")),
        start_time=_time(_str(job, "starttime")),
        end_time=_time(_str(job, "endtime")),
        job_level=_num(op, "joblevel"),
        user_data=_str(op, "userdata"),
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
    queue = _kids(el)
    notify = queue.get("notifyconfig")
    return Queue(
        queue_id=_str(queue, "queueid") or "",
        name=_str(queue, "name") or "",
        state=_str(queue, "state") or "",
        max_size=_num(queue, "maxsize"),
        max_concurrent=_num(queue, "maxconcurrent"),
        category=_str(queue, "category"),
        create_time=_str(queue, "createtime"),
        update_time=_str(queue, "updatetime"),
        notify={} if notify is None else {_name(c): (c.text or "") for c in notify if _local(c)},
    )


def parse_queue_page(body: bytes) -> QueuePage:
    root = parse_document(body)
    return QueuePage(
        queues=[_queue(el) for el in _children(root, "QueueList")],
        total_count=_num(_kids(root), "totalcount"),
        missing=_id_list(root, "NonExistPIDs"),
    )


def parse_template_ids(body: bytes) -> list[str]:
    """The TemplateIds of a `GET /template` answer (`<TemplateList>` elements)."""
    root = parse_document(body)
    return [t for el in _children(root, "TemplateList") if (t := _text(el, "TemplateId"))]


def parse_queue(body: bytes) -> Queue:
    queue = _child(parse_document(body), "Queue", "QueueList")
    if queue is None:
        raise ResponseError("queue update answer carries no Queue")
    return _queue(queue)


def parse_object_page(body: bytes) -> ObjectPage:
    root_el = parse_document(body)
    root = _kids(root_el)
    encoded = (_str(root, "encodingtype") or "").lower() == "url"

    def decode(value: str | None) -> str | None:
        return unquote(value) if encoded and value is not None else value

    entries = _entries_fast(root_el, decode)
    if entries is None:
        entries = [_entry(el, decode) for el in _children(root_el, "Contents")]
    prefixes = [decode(_text(el, "Prefix")) or "" for el in _children(root_el, "CommonPrefixes")]
    truncated = (_str(root, "istruncated") or "false").lower() == "true"
    next_marker = decode(_str(root, "nextmarker")) or None
    if truncated and next_marker is None and entries:
        next_marker = entries[-1].key  # S3 semantics when NextMarker is left out
    return ObjectPage(entries, prefixes, truncated, next_marker)


# COS's own spelling, read by XPath in C: a page holds up to 1,000 entries, and skip_existing
# reads a million. Any other shape (another case, a namespace, a missing field) is read by
# `_entry`, element by element.
_CONTENTS = etree.XPath("count(Contents)")
_CONTENTS_ANY = etree.XPath("count(*[translate(local-name(), 'CONTENS', 'contens') = 'contents'])")
_COLUMNS = tuple(
    etree.XPath(f"Contents/{name}/text()", smart_strings=False)
    for name in ("Key", "Size", "ETag", "LastModified", "StorageClass")
)


_Decode = Callable[[str | None], str | None]


def _entries_fast(root: Element, decode: _Decode) -> list[ObjectEntry] | None:
    count = cast(float, _CONTENTS(root))
    if count != cast(float, _CONTENTS_ANY(root)):
        return None
    columns = [cast(list[str], xpath(root)) for xpath in _COLUMNS]
    if any(len(column) != count for column in columns):
        return None
    keys, sizes, etags, times, classes = columns
    return [
        ObjectEntry(
            decode(key) or "",
            _int(size),
            etag.strip().strip('"') or None,
            when.strip() or None,
            storage.strip() or None,
        )
        for key, size, etag, when, storage in zip(keys, sizes, etags, times, classes, strict=True)
    ]


def _entry(el: Element, decode: _Decode) -> ObjectEntry:
    entry = _kids(el)
    key = decode(_key(entry, "key"))
    if key is None:
        raise ResponseError("listing entry without a Key")
    return ObjectEntry(
        key=key,
        size=_num(entry, "size"),
        etag=(_str(entry, "etag") or "").strip('"') or None,
        last_modified=_str(entry, "lastmodified") or None,
        storage_class=_str(entry, "storageclass") or None,
    )


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
