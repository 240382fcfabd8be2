"""The aiohttp client for CI and COS: one session per run, signed requests, one error boundary.

Each method makes exactly one HTTP request (retries belong to `orchestrator.cloud.retry`),
signs it afresh, and raises only `orchestrator.exceptions.CIError` subclasses.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Protocol
from urllib.parse import quote

import aiohttp
from yarl import URL

from orchestrator import defaults
from orchestrator.cloud import wire
from orchestrator.cloud.models import (
    DescribeResult,
    JobDetail,
    JobPage,
    JobRequest,
    ObjectPage,
    Queue,
    QueuePage,
)
from orchestrator.cloud.signing import Credentials, authorization, uri_encode
from orchestrator.exceptions import (
    ConnectError,
    DisconnectError,
    ReadTimeout,
    ResponseError,
    TLSError,
    TransportError,
)

__all__ = ["CIClient", "ClientSettings", "Limiter", "translate_errors"]

MiB = 1024 * 1024


class Limiter(Protocol):
    """What the client needs from a rate limiter: pacing, and feedback on throttling."""

    async def acquire(self) -> None: ...

    def on_throttle(self, retry_after: float | None) -> None: ...


@dataclass(frozen=True)
class ClientSettings:
    """How to reach CI and COS. Without `endpoint`, the public Tencent Cloud hosts are used."""

    bucket: str
    region: str
    credentials: Credentials
    endpoint: str | None = None
    concurrency: int = defaults.CONCURRENCY
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_timeout: float = 60.0
    max_body: int = 16 * MiB
    sign_window: int = 900
    # A CI request unanswered after `straggler_after` seconds (an answer lost on the way, most
    # likely) stops counting against `concurrency` until its own timeout, so that a few lost
    # answers do not hold the slots every other request waits for; at most `max_stragglers`.
    straggler_after: float = 2.0
    max_stragglers: int = 64
    clock: Callable[[], float] = field(default=time.time, repr=False)

    def host(self, service: str) -> str:
        return f"{self.bucket}.{service}.{self.region}.myqcloud.com"

    def base_url(self, service: str) -> URL:
        if self.endpoint:
            return URL(self.endpoint.rstrip("/"))
        return URL(f"https://{self.host(service)}")


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """The one place where aiohttp's and asyncio's exceptions become ours."""
    try:
        yield
    except aiohttp.ClientSSLError as exc:
        raise TLSError(f"TLS failure: {_describe(exc)}") from None
    except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
        raise ConnectError(f"cannot connect: {_describe(exc)}") from None
    except (aiohttp.SocketTimeoutError, TimeoutError) as exc:
        raise ReadTimeout(f"timed out waiting for the answer{_suffix(exc)}") from None
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
        raise DisconnectError(f"connection lost mid-answer: {_describe(exc)}") from None
    except aiohttp.ClientResponseError as exc:
        raise ResponseError(f"unreadable answer: {_describe(exc)}") from None
    except (aiohttp.ClientOSError, ConnectionError) as exc:
        raise DisconnectError(f"connection error: {_describe(exc)}") from None
    except aiohttp.InvalidURL as exc:
        raise ConnectError(f"invalid endpoint URL: {exc}") from None
    except aiohttp.ClientError as exc:
        raise TransportError(f"HTTP client error: {_describe(exc)}") from None


def _describe(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # some aiohttp errors cannot render without their request
        text = ""
    return text.splitlines()[0] if text.strip() else type(exc).__name__


def _suffix(exc: BaseException) -> str:
    text = _describe(exc)
    return "" if text == type(exc).__name__ else f": {text}"


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


class CIClient:
    """Typed calls for the CI pic-job, queue and COS listing APIs."""

    def __init__(
        self,
        settings: ClientSettings,
        *,
        limiter: Limiter | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.settings = settings
        self.limiter = limiter
        self._session = session
        self._own_session = session is None
        self._slots = asyncio.Semaphore(settings.concurrency)
        self.stragglers = 0  # requests in flight that no longer hold a slot

    async def __aenter__(self) -> CIClient:
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
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and self._own_session:
            await self._session.close()
        self._session = None

    # -- transport --

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
        async with self._open(
            op,
            method,
            path,
            service=service,
            params=params,
            body=body,
            content_type=content_type,
            decompress=decompress,
        ) as resp:
            return await self._read_bounded(resp)

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
        s = self.settings
        params = dict(params or {})
        headers = {"Host": s.host(service)}
        if body is not None:
            headers["Content-Type"] = content_type
            headers["Content-Length"] = str(len(body))
        if s.credentials.token:
            headers[f"x-{service}-security-token"] = s.credentials.token
        now = int(s.clock())
        headers["Authorization"] = authorization(
            method, path, params, headers, s.credentials, now - 60, now + s.sign_window
        )
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
        if service == "ci" and self.limiter is not None:
            await self.limiter.acquire()
        session = self._get_session()
        async with self._slot(service):
            with translate_errors():
                async with session.request(
                    method,
                    url,
                    data=body,
                    headers=headers,
                    allow_redirects=False,
                    auto_decompress=decompress,
                    timeout=timeout or session.timeout,
                ) as resp:
                    if resp.status >= 300:
                        error = wire.parse_error(
                            resp.status,
                            await self._read_bounded(resp),
                            resp.headers.get("Content-Type", ""),
                            _retry_after(resp.headers.get("Retry-After")),
                        )
                        if error.throttled and self.limiter is not None:
                            self.limiter.on_throttle(error.retry_after)
                        raise error
                    yield resp

    @contextlib.asynccontextmanager
    async def _slot(self, service: str) -> AsyncIterator[None]:
        """One of `concurrency` slots, given back early by a CI request that straggles."""
        await self._slots.acquire()
        held = True
        straggling = False

        def straggle() -> None:
            nonlocal held, straggling
            if held and self.stragglers < self.settings.max_stragglers:
                held, straggling = False, True
                self.stragglers += 1
                self._slots.release()

        timer = None
        if service == "ci" and self.settings.max_stragglers > 0:
            timer = asyncio.get_running_loop().call_later(self.settings.straggler_after, straggle)
        try:
            yield
        finally:
            if timer is not None:
                timer.cancel()
            if held:
                self._slots.release()
            if straggling:
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

    # -- CI pic jobs --

    async def submit(self, request: JobRequest) -> JobDetail:
        body = wire.build_submit(request)
        return wire.parse_submit(await self._call("submit", "POST", "/pic_jobs", body=body))

    async def describe(self, job_ids: Sequence[str]) -> DescribeResult:
        if not job_ids:
            return DescribeResult([], [])
        path = "/pic_jobs/" + ",".join(job_ids)
        return wire.parse_describe(await self._call("describe", "GET", path))

    async def list_jobs_page(
        self,
        *,
        queue_id: str | None = None,
        states: str = "All",
        start_creation_time: str | None = None,
        end_creation_time: str | None = None,
        input_object: str | None = None,
        order_by_time: str = "Desc",
        size: int = 100,
        next_token: str = "",
    ) -> JobPage:
        params = {"tag": "PicProcess", "orderByTime": order_by_time, "states": states}
        params["size"] = str(min(max(size, 1), 100))
        params["nextToken"] = next_token
        for name, value in (
            ("queueId", queue_id),
            ("startCreationTime", start_creation_time),
            ("endCreationTime", end_creation_time),
            ("inputObject", input_object),
        ):
            if value:
                params[name] = value
        return wire.parse_job_page(await self._call("list", "GET", "/pic_jobs", params=params))

    async def list_jobs(
        self,
        *,
        queue_id: str | None = None,
        states: str = "All",
        start_creation_time: str | None = None,
        end_creation_time: str | None = None,
        input_object: str | None = None,
    ) -> AsyncIterator[JobDetail]:
        """Every job matching the filters, following NextToken until it is empty or absent."""
        token = ""
        seen: set[str] = set()
        while True:
            page = await self.list_jobs_page(
                queue_id=queue_id,
                states=states,
                start_creation_time=start_creation_time,
                end_creation_time=end_creation_time,
                input_object=input_object,
                next_token=token,
            )
            for job in page.jobs:
                yield job
            if not page.next_token or page.next_token in seen or not page.jobs:
                return
            seen.add(page.next_token)
            token = page.next_token

    async def cancel(self, job_id: str) -> None:
        # The official SDK leaves `cancel` out of the signed parameters; signing it is also valid.
        await self._call("cancel", "PUT", f"/jobs/{job_id}", params={"cancel": ""})

    # -- queues --

    async def queues_page(
        self,
        *,
        queue_ids: Sequence[str] = (),
        state: str | None = None,
        page_number: int = 1,
        page_size: int = 100,
    ) -> QueuePage:
        params = {"pageNumber": str(page_number), "pageSize": str(page_size)}
        if queue_ids:
            params["queueIds"] = ",".join(queue_ids)
        if state:
            params["state"] = state
        return wire.parse_queue_page(await self._call("queue", "GET", "/picqueue", params=params))

    async def list_queues(self, *, state: str | None = None) -> list[Queue]:
        queues: list[Queue] = []
        page_number = 1
        while True:
            page = await self.queues_page(state=state, page_number=page_number)
            queues.extend(page.queues)
            total = page.total_count
            if not page.queues or total is None or len(queues) >= total:
                return queues
            page_number += 1

    async def update_queue(
        self, queue_id: str, *, name: str, state: str, notify: Mapping[str, str] | None = None
    ) -> Queue:
        body = wire.build_queue_update(name, state, notify)
        data = await self._call("queue_update", "PUT", f"/picqueue/{queue_id}", body=body)
        return wire.parse_queue(data)

    # -- COS --

    async def list_objects_page(
        self, *, prefix: str = "", marker: str = "", delimiter: str = "", max_keys: int = 1000
    ) -> ObjectPage:
        params = {
            "prefix": prefix,
            "delimiter": delimiter,
            "marker": marker,
            "max-keys": str(max_keys),
            "encoding-type": "url",
        }
        data = await self._call("list_objects", "GET", "/", service="cos", params=params)
        return wire.parse_object_page(data)

    async def get_object(self, key: str) -> bytes:
        """The object's bytes as stored (never decompressed), up to `max_body`."""
        return await self._call(
            "get_object", "GET", "/" + key.lstrip("/"), service="cos", decompress=False
        )

    async def iter_object(self, key: str, chunk_size: int = MiB) -> AsyncGenerator[bytes, None]:
        """The object's bytes as stored, in chunks as they arrive: no size cap and no overall
        time limit (only the connect and read timeouts), for objects too big to hold. Close
        it (contextlib.aclosing) when stopping early."""
        s = self.settings
        timeout = aiohttp.ClientTimeout(sock_connect=s.connect_timeout, sock_read=s.read_timeout)
        async with self._open(
            "get_object",
            "GET",
            "/" + key.lstrip("/"),
            service="cos",
            decompress=False,
            timeout=timeout,
        ) as resp:
            while chunk := await resp.content.read(chunk_size):
                yield chunk
