"""The client's wire handling against scripted answers (aioresponses).

Integration tests over real HTTP against the emulator are in tests/emulator and tests/engine.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey
from aioresponses import CallbackResult, aioresponses

from orchestrator.cloud.client import CIClient, ClientSettings, translate_errors
from orchestrator.cloud.models import JobRequest
from orchestrator.cloud.signing import Credentials, authorization, parse_authorization
from orchestrator.exceptions import (
    CIError,
    ConnectError,
    DisconnectError,
    Disposition,
    ReadTimeout,
    ResponseError,
    ServiceError,
    TLSError,
)

KEY = ConnectionKey("ci.test", 443, True, True, None, None, None, None)
CREDS = Credentials("AKIDtest", "secret-key-for-tests", "token-for-tests")
ENDPOINT = "http://ci.test:9"
ANY = re.compile(r"^http://ci\.test:9/.*$")
JOB_XML = b"<Response><JobsDetail><JobId>c1</JobId><State>Submitted</State></JobsDetail></Response>"
REQUEST = JobRequest(
    "in.jpg", "b-1250000000", "ap-guangzhou", "out.webp", process_rule="imageMogr2/rotate/90"
)


class RecordingLimiter:
    def __init__(self) -> None:
        self.acquired = 0
        self.throttles: list[float | None] = []

    async def acquire(self) -> None:
        self.acquired += 1

    def on_throttle(self, retry_after: float | None) -> None:
        self.throttles.append(retry_after)


@pytest.fixture
async def client() -> AsyncIterator[CIClient]:
    settings = ClientSettings(
        "b-1250000000", "ap-guangzhou", CREDS, endpoint=ENDPOINT, clock=lambda: 1_700_000_000.0
    )
    async with CIClient(settings, limiter=RecordingLimiter()) as c:
        yield c


async def test_a_submit_is_signed_over_the_ci_host_and_carries_the_ci_token(
    client: CIClient,
) -> None:
    seen: dict[str, Any] = {}

    def capture(url: Any, **kwargs: Any) -> CallbackResult:
        seen.update(kwargs["headers"])
        return CallbackResult(status=200, body=JOB_XML)

    with aioresponses() as m:
        m.post(f"{ENDPOINT}/pic_jobs", callback=capture)
        job = await client.submit(REQUEST)
    assert job.job_id == "c1"
    assert seen["Host"] == "b-1250000000.ci.ap-guangzhou.myqcloud.com"
    assert seen["x-ci-security-token"] == "token-for-tests"
    auth = parse_authorization(seen["Authorization"])
    assert auth["q-sign-time"] == "1699999940;1700000900"
    assert auth["q-header-list"] == "content-length;content-type;host;x-ci-security-token"
    headers = {k: v for k, v in seen.items() if k != "Authorization"}
    expected = authorization("POST", "/pic_jobs", {}, headers, CREDS, 1699999940, 1700000900)
    assert seen["Authorization"] == expected


async def test_a_listing_goes_to_the_cos_host_with_the_cos_token(client: CIClient) -> None:
    seen: dict[str, Any] = {}

    def capture(url: Any, **kwargs: Any) -> CallbackResult:
        seen.update(kwargs["headers"])
        return CallbackResult(
            status=200,
            body=b"<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>",
        )

    with aioresponses() as m:
        m.get(ANY, callback=capture)
        page = await client.list_objects_page(prefix="a b/")
    assert page.entries == []
    assert seen["Host"] == "b-1250000000.cos.ap-guangzhou.myqcloud.com"
    assert seen["x-cos-security-token"] == "token-for-tests"
    assert client.limiter is not None and client.limiter.acquired == 0  # type: ignore[attr-defined]


async def test_a_throttled_answer_reports_retry_after_to_the_limiter(client: CIClient) -> None:
    with aioresponses() as m:
        m.post(
            f"{ENDPOINT}/pic_jobs",
            status=429,
            headers={"Retry-After": "3"},
            content_type="application/xml",
            body=b"<Error><Code>SlowDown</Code><Message>slow</Message></Error>",
        )
        with pytest.raises(ServiceError) as info:
            await client.submit(REQUEST)
    assert (info.value.status, info.value.code, info.value.retry_after) == (429, "SlowDown", 3.0)
    assert info.value.disposition is Disposition.RETRYABLE
    assert client.limiter.throttles == [3.0]  # type: ignore[attr-defined]


async def test_a_body_over_the_limit_is_refused_without_reading_it_all() -> None:
    settings = ClientSettings("b-1", "r", CREDS, endpoint=ENDPOINT, max_body=1024)
    async with CIClient(settings) as small:
        with aioresponses() as m:
            m.get(ANY, status=200, body=b"<Response>" + b"x" * 10_000 + b"</Response>")
            with pytest.raises(ResponseError, match="1024-byte limit"):
                await small.describe(["c1"])


async def test_describe_joins_ids_with_commas_in_the_path(client: CIClient) -> None:
    seen: list[str] = []

    def capture(url: Any, **kwargs: Any) -> CallbackResult:
        seen.append(str(url))
        return CallbackResult(
            status=200, body=b"<Response><NonExistJobIds>c2</NonExistJobIds></Response>"
        )

    with aioresponses() as m:
        m.get(ANY, callback=capture)
        result = await client.describe(["c1", "c2"])
    assert seen == [f"{ENDPOINT}/pic_jobs/c1,c2"]
    assert result.missing == ["c2"]


def _instances() -> list[BaseException]:
    """One instance of every exception class aiohttp exports for clients, plus asyncio's timeout."""
    key = KEY
    os_error = OSError(111, "refused")
    builders: dict[type[BaseException], Callable[[type[Any]], BaseException]] = {
        aiohttp.ClientConnectorCertificateError: lambda c: c(key, ssl.SSLError("bad cert")),
        aiohttp.ClientResponseError: lambda c: c(None, (), status=400, message="bad"),
        aiohttp.InvalidURL: lambda c: c("http://[::1"),
        aiohttp.ServerFingerprintMismatch: lambda c: c(b"a", b"b", "h", 1),
        aiohttp.ClientConnectorError: lambda c: c(key, os_error),
    }
    out: list[BaseException] = [TimeoutError()]
    for name in aiohttp.__all__:
        cls = getattr(aiohttp, name)
        if not (isinstance(cls, type) and issubclass(cls, aiohttp.ClientError)):
            continue
        build = next(
            (b for base, b in builders.items() if issubclass(cls, base)), lambda c: c("boom")
        )
        out.append(build(cls))
    return out


@pytest.mark.parametrize("exc", _instances(), ids=lambda e: type(e).__name__)
def test_no_aiohttp_exception_escapes_untranslated(exc: BaseException) -> None:
    with pytest.raises(CIError) as info, translate_errors():
        raise exc
    assert info.value.__cause__ is None or not isinstance(info.value.__cause__, aiohttp.ClientError)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("exc", "expected", "disposition"),
    [
        (
            aiohttp.ClientConnectorError(KEY, OSError(111, "refused")),
            ConnectError,
            Disposition.RETRYABLE,
        ),
        (aiohttp.ConnectionTimeoutError("connect"), ConnectError, Disposition.RETRYABLE),
        (
            aiohttp.ClientConnectorCertificateError(KEY, ssl.SSLError("x")),
            TLSError,
            Disposition.PERMANENT,
        ),
        (aiohttp.SocketTimeoutError("read"), ReadTimeout, Disposition.UNKNOWN),
        (TimeoutError(), ReadTimeout, Disposition.UNKNOWN),
        (aiohttp.ServerDisconnectedError(), DisconnectError, Disposition.UNKNOWN),
        (aiohttp.ClientPayloadError("truncated"), DisconnectError, Disposition.UNKNOWN),
        (aiohttp.ClientConnectionResetError("reset"), DisconnectError, Disposition.UNKNOWN),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else "",
)
def test_transport_failures_are_classified_by_whether_the_request_left(
    exc: BaseException, expected: type[CIError], disposition: Disposition
) -> None:
    with pytest.raises(expected) as info, translate_errors():
        raise exc
    assert info.value.disposition is disposition


async def test_a_connection_failure_through_the_client_is_a_retryable_connect_error() -> None:
    settings = ClientSettings("b-1", "r", CREDS, endpoint="http://127.0.0.1:9", connect_timeout=2)
    async with CIClient(settings) as c:
        with pytest.raises(ConnectError) as info:
            await c.describe(["c1"])
    assert info.value.retryable
