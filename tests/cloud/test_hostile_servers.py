"""The client against hostile or broken servers: every answer ends in a classified CIError.

Scripted bodies go through aioresponses; answers that need control of the connection itself
(a 100 MB stream, a lying Content-Length, a stall, a cut) come from a raw asyncio server on
loopback that speaks just enough HTTP/1.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aioresponses import aioresponses

from orchestrator.cloud.client import CIClient, ClientSettings, MiB
from orchestrator.cloud.models import JobRequest
from orchestrator.cloud.signing import Credentials
from orchestrator.exceptions import (
    CIError,
    DisconnectError,
    Disposition,
    ReadTimeout,
    ResponseError,
    ServiceError,
)

CREDS = Credentials("AKIDhostileTests0000", "hostile-secret-key")
ENDPOINT = "http://ci.test:9"
SUBMIT_URL = f"{ENDPOINT}/pic_jobs"
REQUEST = JobRequest(
    "in.jpg", "b-1250000000", "ap-guangzhou", "out.webp", process_rule="imageMogr2/rotate/90"
)
HUNDRED_MB = 100 * MiB


def settings(endpoint: str = ENDPOINT, read_timeout: float = 30.0) -> ClientSettings:
    return ClientSettings(
        "b-1250000000", "ap-guangzhou", CREDS, endpoint=endpoint, read_timeout=read_timeout
    )


async def submit_failure(endpoint: str = ENDPOINT, read_timeout: float = 30.0) -> CIError:
    """The CIError one submit ends in; anything else (a result, a foreign exception) fails."""
    async with CIClient(settings(endpoint, read_timeout)) as client:
        with pytest.raises(CIError) as info:
            await client.submit(REQUEST)
    error = info.value
    assert "\n" not in str(error)
    return error


async def scripted_submit(status: int, body: bytes, content_type: str) -> CIError:
    with aioresponses() as mocked:
        mocked.post(SUBMIT_URL, status=status, body=body, content_type=content_type)
        return await submit_failure()


# Entities: never expanded, never fetched

XXE_FILE = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{path}">]>'
    b"<Response><JobsDetail><JobId>&x;</JobId></JobsDetail></Response>"
)
BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">'
        % (level, (b"&lol%d;" % (level - 1) if level > 1 else b"&lol;") * 10)
        for level in range(1, 10)
    )
    + b"]><Response><JobsDetail><JobId>&lol9;</JobId></JobsDetail></Response>"
)
QUADRATIC_BLOWUP = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "'
    + b"a" * 50_000
    + b'">]><Response><JobsDetail><JobId>'
    + b"&a;" * 20_000
    + b"</JobId></JobsDetail></Response>"
)


async def test_an_external_file_entity_in_a_200_is_refused_and_the_file_never_read(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    body = XXE_FILE.replace(b"{path}", str(secret).encode())
    error = await scripted_submit(200, body, "application/xml")
    assert isinstance(error, ResponseError)
    assert error.disposition is Disposition.UNKNOWN
    assert str(error) == "refused XML response carrying a DOCTYPE"
    assert "TOP-SECRET" not in repr(error.args)


async def test_billion_laughs_in_a_200_is_refused_at_once_without_expansion() -> None:
    tracemalloc.start()
    try:
        error = await scripted_submit(200, BILLION_LAUGHS, "application/xml")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(error, ResponseError)
    assert error.disposition is Disposition.UNKNOWN
    assert "DOCTYPE" in str(error)
    assert peak < 20 * MiB  # expanded, &lol9; alone would be 10**9 characters


async def test_a_quadratic_entity_blowup_is_refused_without_expansion() -> None:
    tracemalloc.start()
    try:
        error = await scripted_submit(200, QUADRATIC_BLOWUP, "application/xml")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(error, ResponseError)
    assert "DOCTYPE" in str(error)
    assert peak < 20 * MiB  # expanded, the JobId alone would be 1 GB


async def test_an_entity_laden_error_answer_keeps_its_status_and_says_the_body_was_unusable(
    tmp_path: Path,
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    body = XXE_FILE.replace(b"{path}", str(secret).encode()).replace(b"Response", b"Error")
    error = await scripted_submit(400, body, "application/xml")
    assert isinstance(error, ServiceError)
    assert (error.status, error.code) == (400, "HTTP400")
    assert error.disposition is Disposition.PERMANENT
    assert str(error) == "HTTP 400 HTTP400: non-XML error body (application/xml)"


# The raw server: enough HTTP/1.1 to misbehave on purpose


@dataclass
class RawServer:
    url: str = ""
    connections: int = 0
    body_bytes_sent: int = 0
    # Set when the test is over: a handler that stalls waits for it, then hangs up.
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)


Respond = Callable[[asyncio.StreamWriter, RawServer], Awaitable[None]]


async def _read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
    if length is not None:
        await reader.readexactly(int(length.group(1)))


@contextlib.asynccontextmanager
async def raw_server(respond: Respond) -> AsyncIterator[RawServer]:
    state = RawServer()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        task = asyncio.current_task()
        assert task is not None
        state.tasks.add(task)
        try:
            await _read_request(reader)
            await respond(writer, state)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client hung up: that is what several tests want
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    state.url = f"http://127.0.0.1:{port}"
    try:
        yield state
    finally:
        server.close()
        state.finished.set()
        if state.tasks:
            _, stuck = await asyncio.wait(state.tasks, timeout=5)
            assert not stuck, "a handler of the raw server did not finish"
        await server.wait_closed()


async def stream(writer: asyncio.StreamWriter, state: RawServer, total: int) -> None:
    """`total` bytes of chunked body, in 64 KiB chunks, as fast as the client takes them."""
    chunk = b"<x>" + b"y" * (64 * 1024 - 7) + b"</x>"
    while state.body_bytes_sent < total:
        writer.write(b"%x\r\n" % len(chunk))
        writer.write(chunk)
        writer.write(b"\r\n")
        await writer.drain()
        state.body_bytes_sent += len(chunk)
    writer.write(b"0\r\n\r\n")
    await writer.drain()


CHUNKED_200 = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nTransfer-Encoding: chunked\r\n\r\n"
)


async def test_a_streamed_100_mb_answer_is_cut_off_at_the_size_cap_in_bounded_memory() -> None:
    async def respond(writer: asyncio.StreamWriter, state: RawServer) -> None:
        writer.write(CHUNKED_200)
        await stream(writer, state, HUNDRED_MB)

    async with raw_server(respond) as server:
        tracemalloc.start()
        try:
            started = time.monotonic()
            error = await submit_failure(server.url)
            elapsed = time.monotonic() - started
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert isinstance(error, ResponseError)
    assert error.disposition is Disposition.UNKNOWN
    assert str(error) == f"answer exceeds the {16 * MiB}-byte limit"
    assert server.body_bytes_sent < HUNDRED_MB // 2
    assert peak < 48 * MiB
    assert elapsed < 10


async def test_a_declared_100_mb_answer_is_refused_before_its_body_is_read() -> None:
    async def respond(writer: asyncio.StreamWriter, state: RawServer) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n"
            b"Content-Length: %d\r\n\r\n" % HUNDRED_MB
        )
        await writer.drain()
        chunk = b"y" * (64 * 1024)
        while state.body_bytes_sent < HUNDRED_MB:
            writer.write(chunk)
            await writer.drain()
            state.body_bytes_sent += len(chunk)

    async with raw_server(respond) as server:
        error = await submit_failure(server.url)
    assert isinstance(error, ResponseError)
    assert error.disposition is Disposition.UNKNOWN
    assert str(error) == f"answer of {HUNDRED_MB} bytes exceeds the {16 * MiB}-byte limit"
    assert server.body_bytes_sent < HUNDRED_MB // 2


def _gzip_of_zeros(size: int) -> bytes:
    packer = zlib.compressobj(1, zlib.DEFLATED, 31)  # level 1: fast, still 200:1
    block = b"\0" * MiB
    return b"".join(packer.compress(block) for _ in range(size // MiB)) + packer.flush()


async def test_a_gzip_bomb_is_cut_off_at_the_size_cap_after_decompression() -> None:
    bomb = _gzip_of_zeros(HUNDRED_MB)
    assert len(bomb) < MiB

    async def respond(writer: asyncio.StreamWriter, state: RawServer) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Encoding: gzip\r\n"
            b"Content-Length: %d\r\n\r\n" % len(bomb)
        )
        writer.write(bomb)
        await writer.drain()
        state.body_bytes_sent += len(bomb)

    async with raw_server(respond) as server:
        tracemalloc.start()
        try:
            error = await submit_failure(server.url)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert isinstance(error, ResponseError)
    assert error.disposition is Disposition.UNKNOWN
    assert str(error) == f"answer exceeds the {16 * MiB}-byte limit"
    assert peak < 48 * MiB


async def test_an_external_dtd_and_entity_are_never_fetched() -> None:
    async def respond(writer: asyncio.StreamWriter, state: RawServer) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    async with raw_server(respond) as attacker:
        body = (
            f'<?xml version="1.0"?><!DOCTYPE r SYSTEM "{attacker.url}/evil.dtd" '
            f'[<!ENTITY x SYSTEM "{attacker.url}/x">]>'
            "<Response><JobsDetail><JobId>&x;</JobId></JobsDetail></Response>"
        ).encode()
        error = await scripted_submit(200, body, "application/xml")
    assert isinstance(error, ResponseError)
    assert "DOCTYPE" in str(error)
    assert attacker.connections == 0


# Broken answers from proxies and half-working servers


@pytest.mark.parametrize(
    ("status", "content_type", "body", "expected"),
    [
        (
            502,
            "text/html",
            b"<html><head><title>502 Bad Gateway</title></head><body><center>"
            b"<h1>502 Bad Gateway</h1></center><hr/><center>nginx</center></body></html>",
            ("HTTP 502 HTTP502: unexpected <html> error body", Disposition.UNKNOWN),
        ),
        (
            504,
            "text/html; charset=utf-8",
            b"<!DOCTYPE html><html><body><p>Gateway Timeout</p><br></body></html>",
            ("HTTP 504 HTTP504: non-XML error body (text/html)", Disposition.UNKNOWN),
        ),
        (
            503,
            "text/html",
            b"<!DOCTYPE html><html><body>Service Unavailable<br></body></html>",
            ("HTTP 503 HTTP503: non-XML error body (text/html)", Disposition.RETRYABLE),
        ),
        (
            403,
            "text/html",
            b"<html><body><h1>Request blocked by the firewall</h1><br></body></html>",
            ("HTTP 403 HTTP403: non-XML error body (text/html)", Disposition.PERMANENT),
        ),
    ],
    ids=["502-nginx", "504-doctype-html", "503-html", "403-waf"],
)
async def test_an_html_error_page_from_a_proxy_keeps_its_status_and_is_classified_by_it(
    status: int, content_type: str, body: bytes, expected: tuple[str, Disposition]
) -> None:
    error = await scripted_submit(status, body, content_type)
    assert isinstance(error, ServiceError)
    assert (str(error), error.disposition) == expected


@pytest.mark.parametrize(
    ("content_type", "body", "message"),
    [
        ("application/xml", b"", "empty response body where XML was expected"),
        ("application/xml", b" \r\n\t ", "empty response body where XML was expected"),
        (
            "application/xml",
            b"<Response><JobsDetail><JobId>c1</JobId><State>Subm",
            "malformed XML in response: ",
        ),
        (
            "application/xml",
            b"<Response><JobsDetail><State>Submitted</State></JobsDetail></Response>",
            "JobsDetail without a JobId in response",
        ),
        (
            "application/xml",
            b"<Response><JobsDetail><JobId>  </JobId></JobsDetail></Response>",
            "JobsDetail without a JobId in response",
        ),
        ("application/xml", b"<Response/>", "submit answer carries no JobsDetail"),
        (
            "application/json",
            b'{"JobsDetail": {"JobId": "c1", "State": "Submitted"}}',
            "malformed XML in response: ",
        ),
        ("image/png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "malformed XML in response: "),
        (
            "text/html",
            b"<html><body><form>Sign in to the Wi-Fi</form></body></html>",
            "submit answer carries no JobsDetail",
        ),
        (
            "application/xml",
            b"<Response>" + b"<a>" * 5000 + b"</a>" * 5000 + b"</Response>",
            "malformed XML in response: Excessive depth",
        ),
    ],
    ids=[
        "empty",
        "blank",
        "truncated",
        "jobid-missing",
        "jobid-blank",
        "no-jobsdetail",
        "json",
        "binary",
        "captive-portal",
        "deep-nesting",
    ],
)
async def test_an_unusable_200_is_an_outcome_unknown_response_error(
    content_type: str, body: bytes, message: str
) -> None:
    error = await scripted_submit(200, body, content_type)
    assert isinstance(error, ResponseError)
    assert error.disposition is Disposition.UNKNOWN
    assert str(error).startswith(message)


async def test_a_valid_answer_with_the_wrong_content_type_is_still_read() -> None:
    body = (
        b"<Response><JobsDetail><JobId>c9</JobId><State>Submitted</State></JobsDetail></Response>"
    )
    with aioresponses() as mocked:
        mocked.post(SUBMIT_URL, status=200, body=body, content_type="text/plain")
        async with CIClient(settings()) as client:
            job = await client.submit(REQUEST)
    assert (job.job_id, job.state) == ("c9", "Submitted")


async def test_an_answer_cut_short_of_its_content_length_is_a_disconnect_of_unknown_outcome() -> (
    None
):
    async def respond(writer: asyncio.StreamWriter, state: RawServer) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: 1000\r\n\r\n"
            b"<Response><JobsDetail><JobId>c1</JobId>"
        )
        await writer.drain()

    async with raw_server(respond) as server:
        error = await submit_failure(server.url)
    assert isinstance(error, DisconnectError)
    assert error.disposition is Disposition.UNKNOWN
    assert str(error).startswith("connection lost mid-answer: ")


async def test_a_connection_closed_before_any_answer_is_a_disconnect_of_unknown_outcome() -> None:
    async def respond(writer: asyncio.StreamWriter, state: RawServer) -> None:
        return None

    async with raw_server(respond) as server:
        error = await submit_failure(server.url)
    assert isinstance(error, DisconnectError)
    assert error.disposition is Disposition.UNKNOWN
    assert str(error) == "connection lost mid-answer: Server disconnected"


async def test_an_answer_that_is_not_http_is_an_error_of_unknown_outcome() -> None:
    async def respond(writer: asyncio.StreamWriter, state: RawServer) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()

    async with raw_server(respond) as server:
        error = await submit_failure(server.url)
    assert isinstance(error, ResponseError)
    assert error.disposition is Disposition.UNKNOWN
    assert str(error).startswith('unreadable answer: 400, message="Bad status line')


async def test_oversized_headers_are_an_error_of_unknown_outcome() -> None:
    async def respond(writer: asyncio.StreamWriter, state: RawServer) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nX-Padding: " + b"p" * (1024 * 1024) + b"\r\n\r\n")
        await writer.drain()

    async with raw_server(respond) as server:
        error = await submit_failure(server.url)
    assert isinstance(error, ResponseError)
    assert error.disposition is Disposition.UNKNOWN
    assert str(error).startswith('unreadable answer: 400, message="Got more than 8190 bytes')
    assert len(str(error)) < 400


async def test_a_server_that_stalls_mid_answer_times_out_as_unknown_instead_of_hanging() -> None:
    async def respond(writer: asyncio.StreamWriter, state: RawServer) -> None:
        writer.write(CHUNKED_200 + b"a\r\n<Response>\r\n")
        await writer.drain()
        await state.finished.wait()  # the rest of the answer never comes

    async with raw_server(respond) as server:
        error = await submit_failure(server.url, read_timeout=0.2)
    assert isinstance(error, ReadTimeout)
    assert error.disposition is Disposition.UNKNOWN


# Text the server controls never breaks the one-line error


async def test_a_multi_line_and_overlong_error_message_becomes_one_bounded_line() -> None:
    body = (
        b"<Error><Code>Invalid\nArgument</Code><Message>first line\r\n  second line\n"
        + b"m" * 20_000
        + b"</Message><RequestId>r\n1</RequestId></Error>"
    )
    error = await scripted_submit(400, body, "application/xml")
    assert isinstance(error, ServiceError)
    assert error.disposition is Disposition.PERMANENT
    assert (error.code, error.request_id) == ("Invalid Argument", "r 1")
    assert error.error_message.startswith("first line second line mmm")
    assert len(str(error)) < 500


async def test_a_control_character_in_a_200_is_a_one_line_response_error() -> None:
    error = await scripted_submit(200, b"<Response>\n<JobId>\x00</JobId></Response>", "text/xml")
    assert isinstance(error, ResponseError)
    assert error.disposition is Disposition.UNKNOWN
    assert str(error).startswith("malformed XML in response: ")


async def test_a_deeply_nested_json_error_body_is_reported_not_raised() -> None:
    body = b'{"Error": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    error = await scripted_submit(500, body, "application/json")
    assert isinstance(error, ServiceError)
    assert error.disposition is Disposition.UNKNOWN
    assert str(error) == "HTTP 500 HTTP500: unparseable JSON error body"


@pytest.mark.parametrize("width", ["\u00b2", "9" * 5000, "-3"])
async def test_image_sizes_that_are_not_plain_numbers_are_kept_as_text(width: str) -> None:
    body = (
        "<Response><JobsDetail><JobId>c1</JobId><State>Success</State><Operation>"
        "<PicProcessResult><ObjectName>o.webp</ObjectName><OriginalInfo><ImageInfo>"
        f"<Width>{width}</Width><Height>7</Height></ImageInfo></OriginalInfo>"
        "</PicProcessResult></Operation></JobsDetail></Response>"
    ).encode()
    with aioresponses() as mocked:
        mocked.get(f"{ENDPOINT}/pic_jobs/c1", status=200, body=body, content_type="application/xml")
        async with CIClient(settings()) as client:
            result = await client.describe(["c1"])
    picture = result.jobs[0].result
    assert picture is not None and picture.original == {"width": width, "height": 7}


READ_CALLS: dict[str, Callable[[CIClient], Awaitable[object]]] = {
    "describe": lambda client: client.describe(["c1", "c2"]),
    "list-jobs": lambda client: client.list_jobs_page(),
    "queues": lambda client: client.queues_page(),
    "list-objects": lambda client: client.list_objects_page(prefix="photos/"),
}


@pytest.mark.parametrize(
    "body",
    [b"", BILLION_LAUGHS, b"<Response><JobsDetail><JobId>c1</JobId><Sta", b"{}"],
    ids=["empty", "billion-laughs", "truncated", "json"],
)
@pytest.mark.parametrize("call", list(READ_CALLS))
async def test_every_read_call_classifies_an_unusable_200_as_outcome_unknown(
    call: str, body: bytes
) -> None:
    with aioresponses() as mocked:
        mocked.get(re.compile(r"^http://ci\.test:9/.*$"), status=200, body=body)
        async with CIClient(settings()) as client:
            with pytest.raises(ResponseError) as info:
                await READ_CALLS[call](client)
    assert info.value.disposition is Disposition.UNKNOWN
    assert "\n" not in str(info.value)
