"""The request path under every client call: one session per run, a request signed afresh with
the current credentials and the service's time, its errors translated at one boundary
(`orchestrator.cloud.boundary`).

A call makes one HTTP request (retries belong to `orchestrator.cloud.retry`) and raises only
`orchestrator.exceptions.CIError` subclasses. Two refusals are answered here, once each per call,
because only a new signature can fix them: a clock-skew refusal (re-signed with the service's
time) and an expired-credentials refusal (re-signed with fresh credentials).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Protocol, Self
from urllib.parse import quote

import aiohttp
from yarl import URL

from orchestrator import defaults
from orchestrator.cloud import wire
from orchestrator.cloud.boundary import translate_errors
from orchestrator.cloud.clock import ServiceClock, is_skew_error
from orchestrator.cloud.credentials import CredentialProvider, is_expired_credentials
from orchestrator.cloud.signing import Credentials, Signer, uri_encode
from orchestrator.cloud.timeouts import AnswerTimeout, TimeoutPolicy
from orchestrator.exceptions import ReadTimeout, ResponseError, ServiceError

__all__ = ["STRAGGLING", "ClientSettings", "Limiter", "MiB", "Transport", "translate_errors"]

MiB = 1024 * 1024
# Set in a task's context, called when that task's CI request becomes a straggler: its caller
# may go on with other work while the request waits for its answer or its timeout.
STRAGGLING: ContextVar[Callable[[], None] | None] = ContextVar("straggling", default=None)


class Limiter(Protocol):
    """What the client needs from a rate limiter: pacing, and feedback on throttling."""

    async def acquire(self) -> None: ...

    def on_throttle(self, retry_after: float | None) -> None: ...


@dataclass(frozen=True)
class ClientSettings:
    """How to reach CI and COS. Without `endpoint`, the public Tencent Cloud hosts are used.
    `ci_endpoint`/`cos_endpoint` are full base URLs (private, internal or accelerated domains)
    whose host is also the Host header; `endpoint` (the emulator) keeps the public Host."""

    bucket: str
    region: str
    credentials: Credentials
    endpoint: str | None = None
    concurrency: int = defaults.CONCURRENCY
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    # CI calls wait for their answer as long as the answers so far say is enough (see
    # `orchestrator.cloud.timeouts`), never less than this nor more than `read_timeout`.
    min_read_timeout: float = 3.0
    total_timeout: float = 60.0
    max_body: int = 16 * MiB
    sign_window: int = 900
    # A CI request unanswered after `straggler_after` seconds (an answer lost on the way, most
    # likely) stops counting against `concurrency` until its own timeout, so that a few lost
    # answers do not hold the slots every other request waits for; at most `max_stragglers`.
    # Once answers have been seen, the wait is learnt from them (`Transport.straggle_after`),
    # never below `min_straggler_after`.
    straggler_after: float = 2.0
    min_straggler_after: float = 0.25
    max_stragglers: int = 64
    clock: Callable[[], float] = field(default=time.time, repr=False)
    ci_endpoint: str | None = None
    cos_endpoint: str | None = None

    def _own_endpoint(self, service: str) -> str | None:
        return self.ci_endpoint if service == "ci" else self.cos_endpoint

    def host(self, service: str) -> str:
        own = self._own_endpoint(service)
        if own:
            url = URL(own)
            port = f":{url.explicit_port}" if url.explicit_port else ""
            return f"{url.raw_host}{port}"
        return f"{self.bucket}.{service}.{self.region}.myqcloud.com"

    def base_url(self, service: str) -> URL:
        own = self._own_endpoint(service)
        if own:
            return URL(own.rstrip("/"))
        if self.endpoint:
            return URL(self.endpoint.rstrip("/"))
        return URL(f"https://{self.host(service)}")


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class Transport:
    """Signed requests to CI and COS over one session, at most `concurrency` at a time."""

    def __init__(
        self,
        settings: ClientSettings,
        *,
        limiter: Limiter | None = None,
        session: aiohttp.ClientSession | None = None,
        credentials: CredentialProvider | None = None,
    ) -> None:
        self.settings = settings
        self.limiter = limiter
        self.throttled: Counter[int] = Counter()  # throttled answers per Unix second
        self.clock = ServiceClock(settings.clock)
        self.credentials = credentials or CredentialProvider.static(settings.credentials)
        # Temporary credentials are judged by the service's time, as the client signs.
        self.credentials.clock = self.clock.now
        self._session = session
        self._own_session = session is None
        self._slots = asyncio.Semaphore(settings.concurrency)
        self.stragglers = 0  # requests in flight that no longer hold a slot
        self.last_date: str | None = None  # the Date of the last success, for `picjobs check`
        self.answer_timeout = AnswerTimeout(
            TimeoutPolicy(floor=settings.min_read_timeout, ceiling=settings.read_timeout)
        )
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self._signer = Signer()
        self._targets: dict[
            tuple[str, str, tuple[tuple[str, str], ...], int | None], tuple[URL, dict[str, str]]
        ] = {}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            s = self.settings
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=s.concurrency + s.max_stragglers, keepalive_timeout=10.0
                ),
                timeout=aiohttp.ClientTimeout(
                    total=s.total_timeout, sock_connect=s.connect_timeout, sock_read=s.read_timeout
                ),
                auto_decompress=True,
                skip_auto_headers=("User-Agent",),
                cookie_jar=aiohttp.DummyCookieJar(),  # CI and COS set none we would send back
            )
        return self._session

    def straggle_after(self) -> float:
        """Seconds after which an unanswered CI request stops holding its slot: learnt from the
        answers so far (a lost answer must not cost a worker seconds of a fast service)."""
        s = self.settings
        return self.answer_timeout.patience(min(s.min_straggler_after, s.straggler_after),
                                            s.straggler_after)  # fmt: skip

    def _ci_timeout(self) -> aiohttp.ClientTimeout | None:
        """The learnt read timeout for a CI request, rounded so that few objects are made."""
        if not self.answer_timeout.learning:
            return None
        read = round(self.answer_timeout.current(), 1)
        timeout = self._timeouts.get(read)
        if timeout is None:
            s = self.settings
            timeout = aiohttp.ClientTimeout(
                total=s.total_timeout, sock_connect=s.connect_timeout, sock_read=read
            )
            self._timeouts[read] = timeout
        return timeout

    async def close(self) -> None:
        await self.credentials.close()
        if self._session is not None and self._own_session:
            await self._session.close()
        self._session = None

    def _target(
        self,
        service: str,
        path: str,
        params: Mapping[str, str],
        body: bytes | None,
        content_type: str,
    ) -> tuple[URL, dict[str, str]]:
        """The URL of one request and its headers before signing; the same request (a submit,
        most of all) is not built again."""
        key = (service, path, tuple(params.items()), None if body is None else len(body))
        known = self._targets.get(key)
        if known is None:
            s = self.settings
            unsigned = {"Host": s.host(service)}
            if body is not None:
                unsigned["Content-Type"] = content_type
                unsigned["Content-Length"] = str(len(body))
            query = "&".join(f"{uri_encode(k)}={uri_encode(v)}" for k, v in params.items())
            base = s.base_url(service)
            # Built, not joined: URL.join would resolve '.' and '..' in keys such as 'a/../b.jpg'
            # and request another object than the one signed.
            url = URL.build(
                scheme=base.scheme,
                host=base.raw_host or "",
                port=base.explicit_port,
                path=base.raw_path.rstrip("/") + quote(path, safe="/-_.~,"),
                query_string=query,
                encoded=True,
            )
            if len(self._targets) >= 64:  # describes and listings go by; keep it small
                self._targets.clear()
            known = self._targets[key] = (url, unsigned)
        return known

    async def _signed_headers(
        self, method: str, path: str, params: Mapping[str, str], service: str,
        unsigned: dict[str, str],
    ) -> tuple[dict[str, str], Credentials, float]:  # fmt: skip
        """Headers signed now with the current credentials; the credentials and the clock's
        offset they were signed with."""
        creds = await self.credentials.get()
        offset = self.clock.offset
        headers = dict(unsigned)
        if creds.token:
            headers[f"x-{service}-security-token"] = creds.token
        now = int(self.clock.now())
        headers["Authorization"] = self._signer.authorization(
            method, path, params, headers, creds, now - 60, now + self.settings.sign_window
        )
        return headers, creds, offset

    async def _refusal(self, resp: aiohttp.ClientResponse) -> tuple[ServiceError, str | None]:
        error = wire.parse_error(
            resp.status,
            await self._read_bounded(resp),
            resp.headers.get("Content-Type", ""),
            _retry_after(resp.headers.get("Retry-After")),
        )
        return error, resp.headers.get("Date")

    async def _resign(
        self,
        error: ServiceError,
        date: str | None,
        offset: float,
        creds: Credentials,
        tried: set[str],
    ) -> None:
        """Return if signing again can fix `error` (once each per call); raise it if not."""
        if "skew" not in tried and is_skew_error(error):
            tried.add("skew")
            self.clock.correct(date)
            if self.clock.offset != offset:
                return
        if "expired" not in tried and self.credentials.temporary and is_expired_credentials(error):
            tried.add("expired")
            await self.credentials.expired(creds)
            return
        self._refused(error)

    async def _call(
        self,
        op: str,
        method: str,
        path: str,
        *,
        service: str = "ci",
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        content_type: str = "application/xml",
        decompress: bool = True,
    ) -> bytes:
        """One signed request whose answer is read whole: the body of a success; an error
        answer is raised as a ServiceError. `_open`, for answers read as a stream, is the same
        request written as a context manager, which costs more per call."""
        params = params or {}
        url, unsigned = self._target(service, path, params, body, content_type)
        tried: set[str] = set()
        while True:
            session = self._get_session()
            slot = await self._take_slot(service)
            try:
                # Signed last, after any wait: the credentials must outlive the request's trip.
                headers, creds, offset = await self._signed_headers(
                    method, path, params, service, unsigned
                )
                learnt = self._ci_timeout() if service == "ci" else None
                slot.arm(learnt)
                try:
                    with translate_errors():
                        async with session.request(
                            method,
                            url,
                            data=body,
                            headers=headers,
                            allow_redirects=False,
                            auto_decompress=decompress,
                            timeout=learnt or session.timeout,
                        ) as resp:
                            slot.answered()
                            if resp.status < 300:
                                self.last_date = resp.headers.get("Date")
                                return await self._read_bounded(resp)
                            error, date = await self._refusal(resp)
                except ReadTimeout:
                    slot.timed_out()
                    raise
                except asyncio.CancelledError:
                    slot.cancelled()
                    raise
            finally:
                self._give_slot(slot)
            await self._resign(error, date, offset, creds, tried)

    @contextlib.asynccontextmanager
    async def _open(
        self,
        op: str,
        method: str,
        path: str,
        *,
        service: str = "ci",
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        content_type: str = "application/xml",
        decompress: bool = True,
        timeout: aiohttp.ClientTimeout | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Send one signed request; yield the response once it is known to be a success (an
        error answer is read and raised as a ServiceError)."""
        params = params or {}
        url, unsigned = self._target(service, path, params, body, content_type)
        tried: set[str] = set()
        while True:
            session = self._get_session()
            slot = await self._take_slot(service)
            try:
                headers, creds, offset = await self._signed_headers(
                    method, path, params, service, unsigned
                )
                learnt = self._ci_timeout() if service == "ci" and timeout is None else None
                slot.arm(learnt)
                try:
                    with translate_errors():
                        async with session.request(
                            method,
                            url,
                            data=body,
                            headers=headers,
                            allow_redirects=False,
                            auto_decompress=decompress,
                            timeout=timeout or learnt or session.timeout,
                        ) as resp:
                            slot.answered()
                            if resp.status < 300:
                                self.last_date = resp.headers.get("Date")
                                yield resp
                                return
                            error, date = await self._refusal(resp)
                except ReadTimeout:
                    slot.timed_out()
                    raise
                except asyncio.CancelledError:
                    slot.cancelled()
                    raise
            finally:
                self._give_slot(slot)
            await self._resign(error, date, offset, creds, tried)

    def _refused(self, error: ServiceError) -> None:
        if error.throttled:
            self.throttled[int(time.time())] += 1
            if self.limiter is not None:
                self.limiter.on_throttle(error.retry_after)
        raise error

    async def _take_slot(self, service: str) -> _Slot:
        """One of `concurrency` slots, given back early by a CI request that straggles; then,
        for CI, the rate limiter's next slot. In that order, a request leaves as soon as its
        rate slot comes: had it waited for a connection after it, answers coming back late
        would let the waiting requests out in a burst."""
        await self._slots.acquire()
        if service == "ci" and self.limiter is not None:
            try:
                await self.limiter.acquire()
            except BaseException:
                self._slots.release()
                raise
        slot = _Slot(self)
        if service == "ci" and self.settings.max_stragglers > 0:
            loop = asyncio.get_running_loop()
            slot.timer = loop.call_later(self.straggle_after(), slot.straggle)
        return slot

    def _give_slot(self, slot: _Slot) -> None:
        if slot.timer is not None:
            slot.timer.cancel()
        slot.disarm()
        if slot.held:
            self._slots.release()
        if slot.straggling:
            self.stragglers -= 1

    async def _read_bounded(self, resp: aiohttp.ClientResponse) -> bytes:
        limit = self.settings.max_body
        declared = resp.content_length
        if declared is not None and declared > limit:
            raise ResponseError(f"answer of {declared} bytes exceeds the {limit}-byte limit")
        chunks: list[bytes] = []
        size = 0
        while chunk := await resp.content.read(64 * 1024):
            size += len(chunk)
            if size > limit:
                raise ResponseError(f"answer exceeds the {limit}-byte limit")
            chunks.append(chunk)
        return b"".join(chunks)


class _Slot:
    """A request's hold on one of the transport's `concurrency` slots."""

    __slots__ = (
        "cut",
        "expired",
        "given",
        "held",
        "learnt",
        "notify",
        "sent",
        "straggling",
        "task",
        "timer",
        "transport",
    )

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.held = True
        self.straggling = False
        self.timer: asyncio.TimerHandle | None = None
        self.notify = STRAGGLING.get()
        self.learnt: aiohttp.ClientTimeout | None = None
        self.sent = 0.0
        # A request sent with a longer read timeout than the one learnt since (the first ones
        # of a run get the ceiling, before any answer) is cut at the learnt one once it
        # straggles, rather than hold its item, and what waits on it, for the ceiling.
        self.given: float | None = None
        self.task: asyncio.Task[object] | None = None
        self.cut: asyncio.TimerHandle | None = None
        self.expired = False

    def arm(self, learnt: aiohttp.ClientTimeout | None) -> None:
        """The request leaves now, with `learnt` as its read timeout (None: not a learnt one)."""
        self.learnt = learnt
        if learnt is not None:
            self.sent = time.monotonic()
            if self.timer is not None:
                self.given = learnt.sock_read
                self.task = asyncio.current_task()

    def answered(self) -> None:
        """The answer's headers came: no cut any more, and the learnt timeout learns from it."""
        self.disarm()
        if self.learnt is not None:
            self.transport.answer_timeout.answered(time.monotonic() - self.sent)

    def timed_out(self) -> None:
        if self.learnt is not None:
            self.transport.answer_timeout.timed_out(self.given or self.learnt.sock_read)

    def cancelled(self) -> None:
        """A cancellation reached the request: if it is this slot's own cut, and nothing else
        cancelled the task as well, it stands for a read timeout."""
        if self.expired and self.task is not None and self.task.uncancel() == 0:
            self.expired = False
            self.timed_out()
            raise ReadTimeout("timed out waiting for the answer: cut at the learnt read timeout")

    def disarm(self) -> None:
        """The request is over, or its answer came: no cut any more."""
        self.given = None
        if self.cut is not None:
            self.cut.cancel()
            self.cut = None

    def _expire(self) -> None:
        self.cut = None
        if self.given is not None and self.task is not None:
            self.expired = True
            self.task.cancel()

    def straggle(self) -> None:
        """Unanswered for long: stop counting against `concurrency` (at most `max_stragglers`);
        cut at the learnt read timeout if it was sent with a longer one."""
        transport = self.transport
        if self.given is not None:
            wait = round(transport.answer_timeout.current(), 1)
            if wait + 0.05 < self.given:
                self.given = wait
                self.cut = asyncio.get_running_loop().call_later(
                    self.sent + wait - time.monotonic(), self._expire
                )
        if self.held and transport.stragglers < transport.settings.max_stragglers:
            self.held, self.straggling = False, True
            transport.stragglers += 1
            transport._slots.release()
            if self.notify is not None:
                self.notify()
