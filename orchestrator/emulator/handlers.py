"""Thin handlers: parse the request, make one backend call, serialise the answer."""

from __future__ import annotations

import mimetypes
from email.utils import formatdate
from typing import TYPE_CHECKING

from aiohttp import web

from orchestrator.emulator import jobxml, wire
from orchestrator.emulator.backend import JobQuery
from orchestrator.emulator.errors import InvalidArgument, InvalidDelimiter, RequestEntityTooLarge
from orchestrator.emulator.model import JobState, QueueState, parse_ci_time
from orchestrator.emulator.store import ObjectMeta, check_key

if TYPE_CHECKING:
    from orchestrator.emulator.app import Call

__all__ = [
    "cancel_job",
    "describe_pic_jobs",
    "get_object",
    "head_bucket",
    "head_object",
    "list_objects",
    "list_pic_jobs",
    "list_queues",
    "put_object",
    "submit_job",
    "submit_pic_job",
    "update_queue",
]

MAX_CI_BODY = 1024 * 1024
MAX_LIST_SIZE = 100
MAX_KEYS = 1000
_STATES = {state.value: state for state in JobState}


async def _xml_body(call: Call) -> bytes:
    body = await call.request.read()
    if len(body) > MAX_CI_BODY:
        raise RequestEntityTooLarge()
    return body


def _int(text: str, what: str, low: int, high: int | None = None) -> int:
    try:
        value = int(text)
    except ValueError:
        raise InvalidArgument(f"{what} must be an integer") from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise InvalidArgument(f"{what} must be {bound}")
    return value


# ---------------------------------------------------------------------- CI: jobs


async def submit_pic_job(call: Call) -> web.StreamResponse:
    request = wire.job_request(wire.parse_body(await _xml_body(call)))
    job = call.backend.submit(call.bucket, request, queue_required=True)
    return call.xml(jobxml.jobs_body([job]))


async def submit_job(call: Call) -> web.StreamResponse:
    request = wire.job_request(wire.parse_body(await _xml_body(call)))
    job = call.backend.submit(call.bucket, request, queue_required=False)
    return call.xml(jobxml.jobs_body([job]))


async def describe_pic_jobs(call: Call) -> web.StreamResponse:
    ids = [job_id for job_id in call.match["ids"].split(",") if job_id]
    found, missing = call.backend.describe(call.bucket, ids)
    return call.xml(jobxml.jobs_body(found, missing=missing))


def _job_query(query: dict[str, str]) -> JobQuery:
    tag = query.get("tag", "")
    if tag != "PicProcess":
        raise InvalidArgument("tag must be PicProcess")
    states: frozenset[JobState] | None = None
    names = [name for name in query.get("states", "").split(",") if name] or ["All"]
    if "All" not in names:
        unknown = [name for name in names if name not in _STATES]
        if unknown:
            raise InvalidArgument(f"unknown states: {', '.join(unknown)}")
        states = frozenset(_STATES[name] for name in names)
    elif any(name != "All" and name not in _STATES for name in names):
        raise InvalidArgument("unknown states in states")
    times: list[float | None] = []
    for name in ("startCreationTime", "endCreationTime"):
        text = query.get(name, "")
        try:
            times.append(parse_ci_time(text) if text else None)
        except ValueError:
            raise InvalidArgument(f"{name} must look like 2022-07-18T15:16:43+0800") from None
    order = query.get("orderByTime", "") or "Desc"
    if order not in ("Desc", "Asc"):
        raise InvalidArgument("orderByTime must be Desc or Asc")
    size_text = query.get("size", "")
    return JobQuery(
        queue_id=query.get("queueId") or None,
        states=states,
        start=times[0],
        end=times[1],
        input_object=query.get("inputObject") or None,
        workflow_id=query.get("workflowId") or None,
        inventory_trigger_job_id=query.get("inventoryTriggerJobId") or None,
        descending=order == "Desc",
        size=_int(size_text, "size", 1, MAX_LIST_SIZE) if size_text else 10,
        next_token=query.get("nextToken", ""),
    )


async def list_pic_jobs(call: Call) -> web.StreamResponse:
    jobs, next_token = call.backend.list_jobs(call.bucket, _job_query(call.query))
    return call.xml(jobxml.jobs_body(jobs, next_token=next_token))


async def cancel_job(call: Call) -> web.StreamResponse:
    call.backend.cancel(call.bucket, call.match["job_id"])
    return web.Response(status=200, headers=call.headers())


# ---------------------------------------------------------------------- CI: queues


async def list_queues(call: Call) -> web.StreamResponse:
    query = call.query
    ids = [qid for qid in query.get("queueIds", "").split(",") if qid] or None
    state_text = query.get("state", "") or "All"
    if state_text not in ("All", "Active", "Paused"):
        raise InvalidArgument("state must be Active, Paused or All")
    state = None if state_text == "All" else QueueState(state_text)
    queues, missing = call.backend.list_queues(call.bucket, ids, state)
    paging = None
    number_text, size_text = query.get("pageNumber", ""), query.get("pageSize", "")
    if number_text and size_text:
        number = _int(number_text, "pageNumber", 1)
        size = _int(size_text, "pageSize", 1, MAX_LIST_SIZE)
        paging = (len(queues), number, size)
        queues = queues[(number - 1) * size : number * size]
    return call.xml(wire.queues_body(call.request_id, queues, missing, paging))


async def update_queue(call: Call) -> web.StreamResponse:
    name, state, notify = wire.queue_update(wire.parse_body(await _xml_body(call)))
    queue = call.backend.update_queue(call.bucket, call.match["queue_id"], name, state, notify)
    return call.xml(wire.updated_queue_body(call.request_id, queue))


# ---------------------------------------------------------------------- CI: templates


# ---------------------------------------------------------------------- COS


async def list_objects(call: Call) -> web.StreamResponse:
    query = call.query
    delimiter = query.get("delimiter", "")
    if len(delimiter) > 1:
        raise InvalidDelimiter()
    encoding = query.get("encoding-type", "")
    if encoding not in ("", "url"):
        raise InvalidArgument("encoding-type must be url")
    max_keys_text = query.get("max-keys", "")
    # Larger values are clamped, as S3 does; COS's behaviour is not documented.
    max_keys = min(_int(max_keys_text, "max-keys", 0), MAX_KEYS) if max_keys_text else MAX_KEYS
    prefix, marker = query.get("prefix", ""), query.get("marker", "")
    bucket, listing = call.backend.list_objects(call.bucket, prefix, delimiter, marker, max_keys)
    body = wire.list_objects_body(
        bucket,
        listing,
        prefix=prefix,
        delimiter=delimiter,
        marker=marker,
        max_keys=max_keys,
        url=encoding == "url",
    )
    response = call.xml(body)
    response.headers["x-cos-bucket-region"] = call.backend.region
    return response


async def head_bucket(call: Call) -> web.StreamResponse:
    call.backend.bucket(call.bucket)
    response = web.Response(status=200, headers=call.headers(None))
    response.headers["x-cos-bucket-region"] = call.backend.region
    return response


def _object_headers(call: Call, meta: ObjectMeta) -> dict[str, str]:
    headers = call.headers(mimetypes.guess_type(meta.key)[0] or "application/octet-stream")
    headers["ETag"] = meta.etag
    headers["Last-Modified"] = formatdate(meta.mtime, usegmt=True)
    return headers


async def get_object(call: Call) -> web.StreamResponse:
    meta, data = call.backend.get_object(call.bucket, call.match["key"])
    return web.Response(status=200, body=data, headers=_object_headers(call, meta))


async def head_object(call: Call) -> web.StreamResponse:
    meta = call.backend.head_object(call.bucket, call.match["key"])
    headers = _object_headers(call, meta)
    headers["Content-Length"] = str(meta.size)
    return web.Response(status=200, headers=headers)


async def put_object(call: Call) -> web.StreamResponse:
    key = call.match["key"]
    check_key(key)
    call.backend.bucket(call.bucket)
    meta = call.backend.put_object(call.bucket, key, await call.request.read())
    headers = call.headers(None)
    headers["ETag"] = meta.etag
    return web.Response(status=200, headers=headers)
