"""Injected faults and the rate limit, as a client sees them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest
from lxml import etree

from orchestrator.emulator.faults import Fault, FaultConfig, FaultInjector
from orchestrator.emulator.server import EmulatorConfig, running_emulator
from tests.emulator.support import COS_HOST, CREDS, Client, job_xml


async def set_faults(client: Client, **faults: object) -> None:
    await client.control("POST", "faults", {"seed": 7, **faults})


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [("error_500", 500, "InternalError"), ("error_503", 503, "ServiceUnavailable"),
     ("error_429", 429, "SlowDown")],
)  # fmt: skip
async def test_an_error_fault_answers_that_error_and_creates_no_job(
    client: Client, fault: str, status: int, code: str
) -> None:
    await set_faults(client, **{fault: 1.0})

    reply = await client.submit(job_xml(queue_id=client.queue_id))

    assert (reply.status, reply.text("Code")) == (status, code)
    assert (await client.control("GET", "stats"))["jobs_created"] == 0


async def test_reset_before_drops_the_connection_and_creates_no_job(client: Client) -> None:
    await set_faults(client, reset_before=1.0)

    with pytest.raises(aiohttp.ClientConnectionError):
        await client.submit(job_xml(queue_id=client.queue_id))

    stats = await client.control("GET", "stats")
    assert stats["jobs_created"] == 0
    assert stats["responses"] == {"dropped": 1}


async def test_reset_after_creates_the_job_though_the_client_sees_a_disconnect(
    client: Client,
) -> None:
    await set_faults(client, reset_after=1.0)

    with pytest.raises(aiohttp.ClientConnectionError):
        await client.submit(job_xml(queue_id=client.queue_id))

    await set_faults(client)
    assert (await client.control("GET", "stats"))["jobs_created"] == 1
    listed = await client.request("GET", "/pic_jobs", params={"tag": "PicProcess"})
    assert listed.texts("JobsDetail/Input/Object") == ["photos/cat.jpg"]


async def test_a_lost_answer_creates_the_job_and_leaves_the_client_without_a_reply(
    client: Client,
) -> None:
    await set_faults(client, lost=1.0, lost_seconds=0.2)

    with pytest.raises(aiohttp.ClientConnectionError):  # nothing came; then the line dropped
        await client.submit(job_xml(queue_id=client.queue_id))

    stats = await client.control("GET", "stats")
    assert stats["jobs_created"] == 1
    assert stats["faults"] == {"lost": 1}
    assert stats["responses"] == {"dropped": 1}


async def test_malformed_answers_a_200_with_a_truncated_body(client: Client) -> None:
    await set_faults(client, malformed=1.0)

    reply = await client.submit(job_xml(queue_id=client.queue_id))

    assert reply.status == 200
    assert reply.body.startswith(b"<?xml")
    with pytest.raises(etree.XMLSyntaxError):
        reply.xml()
    assert (await client.control("GET", "stats"))["jobs_created"] == 1


async def test_latency_holds_the_answer(client: Client) -> None:
    await set_faults(client, latency=1.0, latency_seconds=0.2)
    loop = asyncio.get_running_loop()

    started = loop.time()
    reply = await client.request("GET", "/picqueue")

    assert reply.status == 200
    assert loop.time() - started >= 0.2


async def test_faults_cover_ci_routes_by_default_and_cos_routes_on_request(
    client: Client,
) -> None:
    await set_faults(client, error_500=1.0)
    assert (await client.request("GET", "/", host=COS_HOST)).status == 200

    await set_faults(client, error_500=1.0, routes=["GET /"])
    assert (await client.request("GET", "/", host=COS_HOST)).status == 500
    assert (await client.request("GET", "/picqueue")).status == 200


def test_the_same_seed_injects_the_same_faults() -> None:
    config = FaultConfig(error_500=0.3, reset_after=0.2, seed=42)
    first, second = FaultInjector(config), FaultInjector(config)

    draws = [first.draw("POST /pic_jobs", ci=True)[0] for _ in range(200)]

    assert draws == [second.draw("POST /pic_jobs", ci=True)[0] for _ in range(200)]
    assert 30 < draws.count(Fault.ERROR_500) < 90
    assert 15 < draws.count(Fault.RESET_AFTER) < 70


@pytest.mark.parametrize(
    "payload",
    [{"error_500": 2}, {"error_500": 0.6, "error_503": 0.6}, {"nonsense": 1}, {"routes": "ci"}],
)
async def test_an_invalid_fault_configuration_is_a_400(client: Client, payload: object) -> None:
    async with client.session.post(f"{client.emu.url}/_emulator/faults", json=payload) as r:
        assert r.status == 400
        assert "error" in await r.json()


@pytest.fixture
async def limited(config: EmulatorConfig) -> AsyncIterator[Client]:
    config = replace(config, rate=1.0, burst=2, cos_rate=1.0, cos_burst=1)
    async with running_emulator(config) as emu, aiohttp.ClientSession() as session:
        yield Client(session, emu, CREDS)


async def test_requests_beyond_the_ci_rate_get_429_slow_down(limited: Client) -> None:
    replies = [await limited.request("GET", "/picqueue") for _ in range(4)]

    assert [r.status for r in replies[:2]] == [200, 200]
    assert 429 in [r.status for r in replies[2:]]
    throttled = next(r for r in replies if r.status == 429)
    assert throttled.text("Code") == "SlowDown"
    assert throttled.headers["Server"] == "tencent-ci"


async def test_requests_beyond_the_cos_rate_get_503_slow_down(limited: Client) -> None:
    replies = [await limited.request("GET", "/", host=COS_HOST) for _ in range(3)]

    assert replies[0].status == 200
    throttled = [r for r in replies if r.status == 503]
    assert throttled
    assert throttled[0].text("Code") == "SlowDown"
    assert throttled[0].text("Resource")


async def test_the_rate_limit_can_be_lifted_through_the_control_endpoint(limited: Client) -> None:
    await limited.control("POST", "config", {"rate": None})

    replies = [await limited.request("GET", "/picqueue") for _ in range(5)]

    assert {r.status for r in replies} == {200}
