"""Control endpoints under `/_emulator/`: JSON in and out, no signature, no faults.

POST /_emulator/reset       fresh start: jobs, stats and faults cleared, buckets rescanned
GET  /_emulator/info        default bucket, region, queue id, buckets, templates
GET  /_emulator/stats       counters, callbacks included; `?times=1` adds CI request arrival times
POST /_emulator/advance     {"seconds": N}: move the emulator clock forward
GET  /_emulator/faults      the fault configuration
POST /_emulator/faults      replace it (missing fields take their defaults)
GET  /_emulator/templates   every template
POST /_emulator/templates   {"id"?, "name", "rule", "is_pic_info"?}: create or replace one
GET  /_emulator/config      progression, job_seconds, queue limits, write_outputs, rates
POST /_emulator/config      change some of them
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from aiohttp import web

from orchestrator.emulator.errors import ApiError
from orchestrator.emulator.faults import FaultConfig
from orchestrator.emulator.model import Template, ci_time

if TYPE_CHECKING:
    from orchestrator.emulator.app import Emulator

__all__ = ["dispatch"]

_Handler = Callable[[web.Request, "Emulator"], Awaitable[Any]]


class _BadRequest(Exception):
    pass


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.read() or b"{}")
    except ValueError as exc:
        raise _BadRequest(f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _BadRequest("the body must be a JSON object")
    return data


def _number(data: dict[str, Any], name: str) -> float:
    value = data[name]
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _BadRequest(f"{name} must be a number")
    return float(value)


def _template(template: Template) -> dict[str, Any]:
    return {
        "id": template.template_id,
        "name": template.name,
        "rule": template.rule,
        "is_pic_info": template.is_pic_info,
    }


async def _reset(request: web.Request, emulator: Emulator) -> Any:
    emulator.reset()
    return {"ok": True}


async def _info(request: web.Request, emulator: Emulator) -> Any:
    backend = emulator.backend
    bucket = backend.default_bucket
    return {
        "default_bucket": bucket,
        "region": backend.region,
        "queue_id": backend.queue_id_for(bucket),
        "buckets": backend.store.names(),
        "templates": [_template(t) for t in backend.templates.values()],
        "signatures": emulator.credentials is not None,
    }


async def _stats(request: web.Request, emulator: Emulator) -> Any:
    backend = emulator.backend
    backend.tick()
    result = backend.stats.snapshot(times=request.query.get("times", "") not in ("", "0"))
    result["jobs"] = backend.job_counts()
    result["credentials"] = {} if emulator.issuer is None else dict(emulator.issuer.counts)
    return result


async def _advance(request: web.Request, emulator: Emulator) -> Any:
    data = await _json_object(request)
    if "seconds" not in data:
        raise _BadRequest("seconds is required")
    seconds = _number(data, "seconds")
    if seconds < 0:
        raise _BadRequest("seconds must be >= 0")
    now = emulator.backend.advance(seconds)
    return {"now": ci_time(now), "offset": emulator.backend.clock.offset}


async def _get_faults(request: web.Request, emulator: Emulator) -> Any:
    return emulator.faults.config.to_json()


async def _set_faults(request: web.Request, emulator: Emulator) -> Any:
    try:
        config = FaultConfig.from_json(await _json_object(request))
    except (ValueError, TypeError) as exc:
        raise _BadRequest(str(exc)) from None
    emulator.faults.configure(config)
    return config.to_json()


async def _get_templates(request: web.Request, emulator: Emulator) -> Any:
    return [_template(t) for t in emulator.backend.templates.values()]


async def _add_template(request: web.Request, emulator: Emulator) -> Any:
    data = await _json_object(request)
    name, rule = data.get("name"), data.get("rule")
    template_id, is_pic_info = data.get("id"), data.get("is_pic_info", False)
    if not isinstance(name, str) or not isinstance(rule, str):
        raise _BadRequest("name and rule are required strings")
    if template_id is not None and not isinstance(template_id, str):
        raise _BadRequest("id must be a string")
    if not isinstance(is_pic_info, bool):
        raise _BadRequest("is_pic_info must be true or false")
    try:
        template = emulator.backend.add_template(
            name, rule, template_id=template_id, is_pic_info=is_pic_info
        )
    except ApiError as exc:
        raise _BadRequest(exc.message) from None
    return _template(template)


def _config(emulator: Emulator) -> dict[str, Any]:
    settings, limits = emulator.backend.settings, emulator.limits
    return {
        "progression": settings.progression,
        "job_seconds": settings.job_seconds,
        "queue_max_size": settings.queue_max_size,
        "queue_max_concurrent": settings.queue_max_concurrent,
        "write_outputs": settings.write_outputs,
        "rate": limits.rate,
        "burst": limits.burst,
        "cos_rate": limits.cos_rate,
        "cos_burst": limits.cos_burst,
    }


async def _get_config(request: web.Request, emulator: Emulator) -> Any:
    return _config(emulator)


async def _set_config(request: web.Request, emulator: Emulator) -> Any:
    data = await _json_object(request)
    known = set(_config(emulator))
    unknown = set(data) - known
    if unknown:
        raise _BadRequest(f"unknown settings: {', '.join(sorted(unknown))}")
    progression = data.get("progression")
    if progression not in (None, "instant", "delay"):
        raise _BadRequest("progression must be 'instant' or 'delay'")
    for name in ("job_seconds", "queue_max_size", "queue_max_concurrent", "burst", "cos_burst"):
        if name in data:
            _number(data, name)
    for name in ("rate", "cos_rate"):
        if data.get(name) is not None:
            _number(data, name)
    write_outputs = data.get("write_outputs")
    if write_outputs is not None and not isinstance(write_outputs, bool):
        raise _BadRequest("write_outputs must be true or false")
    try:
        emulator.backend.configure(
            progression=progression,
            job_seconds=data.get("job_seconds"),
            queue_max_size=int(data["queue_max_size"]) if "queue_max_size" in data else None,
            queue_max_concurrent=(
                int(data["queue_max_concurrent"]) if "queue_max_concurrent" in data else None
            ),
            write_outputs=write_outputs,
        )
        limits = emulator.limits
        changes = {
            name: data[name] for name in ("rate", "burst", "cos_rate", "cos_burst") if name in data
        }
        for name in ("burst", "cos_burst"):
            if name in changes:
                changes[name] = int(changes[name])
        if changes:
            emulator.set_limits(replace(limits, **changes))
    except ValueError as exc:
        raise _BadRequest(str(exc)) from None
    return _config(emulator)


_ROUTES: dict[str, dict[str, _Handler]] = {
    "/_emulator/reset": {"POST": _reset},
    "/_emulator/info": {"GET": _info},
    "/_emulator/stats": {"GET": _stats},
    "/_emulator/advance": {"POST": _advance},
    "/_emulator/faults": {"GET": _get_faults, "POST": _set_faults},
    "/_emulator/templates": {"GET": _get_templates, "POST": _add_template},
    "/_emulator/config": {"GET": _get_config, "POST": _set_config},
}


async def dispatch(request: web.Request, emulator: Emulator, path: str) -> web.Response:
    methods = _ROUTES.get(path.rstrip("/"))
    if methods is None:
        return web.json_response({"error": f"no control endpoint {path}"}, status=404)
    handler = methods.get(request.method)
    if handler is None:
        allowed = ", ".join(methods)
        return web.json_response(
            {"error": f"{request.method} not allowed; use {allowed}"},
            status=405,
            headers={"Allow": allowed},
        )
    try:
        return web.json_response(await handler(request, emulator))
    except _BadRequest as exc:
        return web.json_response({"error": str(exc)}, status=400)
