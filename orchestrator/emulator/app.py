"""The HTTP face of the emulator: the route table and the order every request goes through.

Routing is by method and decoded path only, never by Host: the official SDK pointed at an IP
sends the COS Host header even for CI calls. The Host names the bucket when it is
`<bucket>.ci.<region>.myqcloud.com` or `<bucket>.cos.<region>.myqcloud.com`; any other Host
means the default bucket. CI paths win over object keys: `GET /pic_jobs` is the job list, never
an object called `pic_jobs`, and keys under `_emulator/` are shadowed by the control routes.

Every request goes through, in order: control routes (no auth, no faults) → job progression →
fault injection → rate limit → signature verification → handler. The metadata service
(`/_emulator/metadata/`) and the fake STS (a request with `X-TC-Action`) answer before all that.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import random
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qsl, unquote

from aiohttp import web

from orchestrator.cloud.signing import Credentials
from orchestrator.emulator import auth, control, handlers, templates, wire
from orchestrator.emulator.backend import Backend
from orchestrator.emulator.callbacks import CallbackPolicy, Notifier
from orchestrator.emulator.clock import SkewedClock
from orchestrator.emulator.errors import (
    ApiError,
    CISlowDown,
    COSSlowDown,
    InternalError,
    MethodNotAllowed,
    ServiceUnavailable,
)
from orchestrator.emulator.faults import Fault, FaultConfig, FaultInjector
from orchestrator.emulator.metadata import METADATA_PREFIX, Issuer, serve_metadata, unknown_key
from orchestrator.emulator.ratelimit import TokenBucket

__all__ = ["CI_RATE", "ROUTES", "Call", "Emulator", "Limits", "Route", "create_app"]

MAX_BODY = 64 * 1024 * 1024
# CI's documented quota for async processing, requests per second.
CI_RATE = 100.0
_HOST = re.compile(
    r"(?P<bucket>[^.]+)\.(?P<service>ci|cos)\.(?P<region>[^.]+)\.(?:myqcloud\.com|tencentcos\.cn)"
)


@dataclass(frozen=True, slots=True)
class Limits:
    """Request rates: CI routes answer 429 beyond `rate`, COS routes 503 beyond `cos_rate`."""

    rate: float | None = CI_RATE
    burst: int = 10
    cos_rate: float | None = None
    cos_burst: int = 100


class Emulator:
    """Everything a request can reach: the backend plus the HTTP-level policies."""

    def __init__(
        self,
        backend: Backend,
        *,
        credentials: Credentials | None = None,
        limits: Limits | None = None,
        faults: FaultConfig | None = None,
        callbacks: CallbackPolicy | None = None,
        issuer: Issuer | None = None,
        clock: SkewedClock | None = None,
    ) -> None:
        self.backend = backend
        self.credentials = credentials
        self.notifier = Notifier(backend, callbacks)
        self.issuer = issuer
        self.clock = clock or SkewedClock()
        self._initial_limits = limits or Limits()
        self.faults = FaultInjector(faults)
        self.set_limits(self._initial_limits)
        self._request_ids = itertools.count(1)

    def set_limits(self, limits: Limits) -> None:
        self.limits = limits
        self.ci_bucket = TokenBucket(limits.rate, limits.burst)
        self.cos_bucket = TokenBucket(limits.cos_rate, limits.cos_burst)

    def reset(self) -> None:
        """Jobs, stats and faults cleared, settings and limits as at start, buckets rescanned."""
        self.notifier.reset()
        self.backend.reset()
        self.faults.configure(FaultConfig())
        self.set_limits(self._initial_limits)
        if self.issuer is not None:
            self.issuer.counts.clear()

    def signing_key(self, secret_id: str, *, ci: bool, now: float) -> Credentials:
        """The credentials a request signed by `secret_id` must match (static or issued)."""
        if self.credentials is not None and secret_id == self.credentials.secret_id:
            return self.credentials
        found = None if self.issuer is None else self.issuer.lookup(secret_id, ci=ci, now=now)
        if found is None:
            raise unknown_key(ci)
        return found

    def request_id(self) -> str:
        # Unique by the counter; the random part only has to look like CI's.
        raw = f"{int(time.time()):x}_{random.getrandbits(32):08x}_{next(self._request_ids)}"
        return base64.b64encode(raw.encode()).decode().rstrip("=")


@dataclass(slots=True)
class Call:
    """One API request as the handlers see it."""

    request: web.Request
    emulator: Emulator
    route: Route
    match: dict[str, str]
    path: str
    params: list[tuple[str, str]]
    bucket: str
    request_id: str
    query: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.query = {}
        for name, value in self.params:
            self.query.setdefault(name, value)

    @property
    def backend(self) -> Backend:
        return self.emulator.backend

    @property
    def ci(self) -> bool:
        return self.route.service == "ci"

    def headers(self, content_type: str | None = "application/xml") -> dict[str, str]:
        service = "ci" if self.ci else "cos"
        headers = {"Server": f"tencent-{service}", f"x-{service}-request-id": self.request_id}
        if content_type is not None:
            headers["Content-Type"] = content_type
        return headers

    def xml(self, body: bytes, status: int = 200) -> web.Response:
        return web.Response(status=status, body=body, headers=self.headers())


Handler = Callable[[Call], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    name: str
    service: Literal["ci", "cos"]
    handler: Handler
    needs_param: str | None = None

    def match(self, method: str, path: str, params: dict[str, str]) -> dict[str, str] | None:
        if method != self.method or (self.needs_param and self.needs_param not in params):
            return None
        found = self.pattern.fullmatch(path)
        return found.groupdict() if found else None


def _route(
    method: str,
    path: str,
    name: str,
    service: Literal["ci", "cos"],
    handler: Handler,
    needs_param: str | None = None,
) -> Route:
    return Route(method, re.compile(path, re.DOTALL), name, service, handler, needs_param)


ROUTES: tuple[Route, ...] = (
    _route("POST", r"/pic_jobs", "POST /pic_jobs", "ci", handlers.submit_pic_job),
    _route("GET", r"/pic_jobs", "GET /pic_jobs", "ci", handlers.list_pic_jobs),
    _route(
        "GET", r"/pic_jobs/(?P<ids>.+)", "GET /pic_jobs/{ids}", "ci", handlers.describe_pic_jobs
    ),
    _route("POST", r"/jobs", "POST /jobs", "ci", handlers.submit_job),
    _route(
        "PUT",
        r"/jobs/(?P<job_id>[^/]+)",
        "PUT /jobs/{id}?cancel",
        "ci",
        handlers.cancel_job,
        "cancel",
    ),
    _route("GET", r"/picqueue", "GET /picqueue", "ci", handlers.list_queues),
    _route(
        "PUT", r"/picqueue/(?P<queue_id>[^/]+)", "PUT /picqueue/{id}", "ci", handlers.update_queue
    ),
    _route("POST", r"/template", "POST /template", "ci", templates.create_template),
    _route("GET", r"/template", "GET /template", "ci", templates.list_templates),
    _route("GET", r"/", "GET /", "cos", handlers.list_objects),
    _route("HEAD", r"/", "HEAD /", "cos", handlers.head_bucket),
    _route("GET", r"/(?P<key>.+)", "GET /{key}", "cos", handlers.get_object),
    _route("HEAD", r"/(?P<key>.+)", "HEAD /{key}", "cos", handlers.head_object),
    _route("PUT", r"/(?P<key>.+)", "PUT /{key}", "cos", handlers.put_object),
)


async def _not_allowed(call: Call) -> web.StreamResponse:
    raise MethodNotAllowed()


_UNMATCHED = _route("*", r".*", "unmatched", "cos", _not_allowed)


def _resolve(method: str, path: str, params: dict[str, str]) -> tuple[Route, dict[str, str]]:
    for route in ROUTES:
        found = route.match(method, path, params)
        if found is not None:
            return route, found
    return _UNMATCHED, {}


def _bucket(request: web.Request, default: str) -> str:
    host = request.headers.get("Host", "").rsplit(":", 1)[0].lower()
    found = _HOST.fullmatch(host)
    return found.group("bucket") if found else default


def create_app(emulator: Emulator) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)

    async def dispatch(request: web.Request) -> web.StreamResponse:
        raw_path, _, raw_query = request.raw_path.partition("?")
        path = unquote(raw_path)
        if path.startswith(METADATA_PREFIX):
            return serve_metadata(emulator.issuer, path)
        if "X-TC-Action" in request.headers:
            from orchestrator.emulator.sts import serve_sts

            return await serve_sts(request, emulator.issuer)
        if path == "/_emulator" or path.startswith("/_emulator/"):
            return await control.dispatch(request, emulator, path)
        params = parse_qsl(raw_query, keep_blank_values=True)
        first = dict(reversed(params))
        route, found = _resolve(request.method, path, first)
        backend = emulator.backend
        backend.tick()
        call = Call(
            request=request,
            emulator=emulator,
            route=route,
            match=found,
            path=path,
            params=params,
            bucket=_bucket(request, backend.default_bucket),
            request_id=emulator.request_id(),
        )
        backend.stats.request(route.name, ci=call.ci)
        response = await _serve(call)
        backend.stats.response("dropped" if isinstance(response, _Dropped) else response.status)
        return response

    async def dated(request: web.Request, response: web.StreamResponse) -> None:
        if emulator.clock.skew:
            response.headers["Date"] = emulator.clock.http_date()

    app.on_response_prepare.append(dated)
    app.router.add_route("*", "/{tail:.*}", dispatch)
    app.cleanup_ctx.append(emulator.notifier.running)
    return app


class _Dropped(web.Response):
    """What a handler returns once it has aborted the connection: nothing is sent."""


def _drop(request: web.Request) -> web.StreamResponse:
    if request.transport is not None:
        request.transport.abort()
    return _Dropped()


async def _serve(call: Call) -> web.StreamResponse:
    emulator, request = call.emulator, call.request
    route = call.route.name
    fault, delay, hold = emulator.faults.draw(route, ci=call.ci)
    stats = emulator.backend.stats
    if delay:
        stats.fault(route, "latency")
        await asyncio.sleep(delay)
        if _hung_up(request):  # the client gave up first: the request is never handled
            stats.fault(route, "abandoned")
            return _Dropped()
    if fault is not Fault.NONE:
        stats.fault(route, fault.value)
    if fault is Fault.RESET_BEFORE:
        return _drop(request)
    if fault in _INJECTED:
        return error_response(call, _INJECTED[fault](call.ci))
    try:
        _admit(call)
        if emulator.credentials is not None or emulator.issuer is not None:
            now = emulator.clock.now()
            key: Credentials | Callable[[str], Credentials] = (
                emulator.credentials
                if emulator.issuer is None and emulator.credentials is not None
                else lambda ak: emulator.signing_key(ak, ci=call.ci, now=now)
            )
            auth.verify(
                request.method,
                call.path,
                call.params,
                request.headers.items(),
                key,
                ci=call.ci,
                now=now,
            )
        response = await call.route.handler(call)
    except ApiError as exc:
        stats.refused(exc.code)
        response = error_response(call, exc)
    if fault is Fault.RESET_AFTER:
        return _drop(request)
    if fault is Fault.LOST:
        await _silence(request, emulator.faults.config.lost_seconds)
        return _drop(request)
    if fault is Fault.MALFORMED and response.status == 200 and isinstance(response, web.Response):
        response = _truncated(call, response)
    if hold:
        stats.fault(route, "latency_after")
        await asyncio.sleep(hold)
        if _hung_up(request):
            return _Dropped()
    return response


_INJECTED: dict[Fault, Callable[[bool], ApiError]] = {
    Fault.ERROR_500: lambda ci: InternalError("injected fault"),
    Fault.ERROR_503: lambda ci: ServiceUnavailable(),
    Fault.ERROR_429: lambda ci: CISlowDown() if ci else COSSlowDown(),
}


async def _silence(request: web.Request, seconds: float) -> None:
    """Answer nothing until the client hangs up or `seconds` pass (checked once a second)."""
    deadline = time.monotonic() + seconds
    while not _hung_up(request) and (left := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(1.0, left))


def _hung_up(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def _admit(call: Call) -> None:
    emulator = call.emulator
    if call.ci and not emulator.ci_bucket.try_acquire():
        raise CISlowDown()
    if not call.ci and not emulator.cos_bucket.try_acquire():
        raise COSSlowDown()


def _truncated(call: Call, response: web.Response) -> web.Response:
    body = response.body if isinstance(response.body, bytes) else b""
    cut = body[: len(body) // 2] if len(body) > 1 else b"<Response><JobsDetail>"
    return web.Response(status=200, body=cut, headers=call.headers(response.content_type))


def error_response(call: Call, error: ApiError) -> web.Response:
    service = "ci" if call.ci else "cos"
    trace_id = base64.b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    region = call.backend.region
    body = wire.error_body(
        error,
        cos=not call.ci,
        request_id=call.request_id,
        trace_id=trace_id,
        resource=f"{call.bucket}.{service}.{region}.myqcloud.com{call.path}",
    )
    headers = call.headers()
    headers[f"x-{service}-trace-id"] = trace_id
    return web.Response(status=error.status, body=body, headers=headers)
