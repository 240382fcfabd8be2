"""Private, internal or accelerated domains (`ci_endpoint`/`cos_endpoint`), and the queue
update a resumed run sends, against scripted answers (aioresponses)."""

from __future__ import annotations

import re
from typing import Any

from aioresponses import CallbackResult, aioresponses

from orchestrator.cloud.client import CIClient, ClientSettings
from orchestrator.cloud.retry import Retrier, RetryPolicy
from orchestrator.cloud.signing import Credentials
from orchestrator.engine.queue import resolve_queue

CREDS = Credentials("AKIDtest", "secret-key-for-tests")
BUCKET = "b-1250000000"
QUEUES = b"""<Response><TotalCount>1</TotalCount><QueueList><QueueId>p1</QueueId>
<Name>queue-1</Name><State>Paused</State><NotifyConfig><Url>https://hooks.example.com/ci</Url>
<Event>TaskFinish</Event><Type>Url</Type><State>On</State><ResultFormat></ResultFormat>
<MqMode></MqMode><MqRegion></MqRegion><MqName></MqName><Label>console-only</Label>
</NotifyConfig><MaxSize>10000</MaxSize></QueueList></Response>"""


async def test_each_service_goes_to_its_own_endpoint_with_the_host_it_implies() -> None:
    settings = ClientSettings(
        BUCKET,
        "ap-guangzhou",
        CREDS,
        ci_endpoint="https://ci.internal.example:8443/",
        cos_endpoint="http://cos-internal.example",
    )
    seen: dict[str, str] = {}

    def record(url: Any, **kwargs: Any) -> CallbackResult:
        seen[str(url).split("?")[0]] = kwargs["headers"]["Host"]
        return CallbackResult(body=b"<Response><TotalCount>0</TotalCount></Response>")

    with aioresponses() as mocked:
        mocked.get(re.compile(r"^https://ci\.internal\.example:8443/picqueue.*"), callback=record)
        mocked.get(re.compile(r"^http://cos-internal\.example/\?.*"), callback=record, body=b"")
        async with CIClient(settings) as client:
            await client.queues_page()
            await client.list_objects_page(prefix="a/")
    assert seen == {
        "https://ci.internal.example:8443/picqueue": "ci.internal.example:8443",
        "http://cos-internal.example/": "cos-internal.example",
    }


async def test_resuming_a_paused_queue_sends_only_the_notify_fields_the_queue_command_keeps() -> (
    None
):
    bodies: list[bytes] = []

    def update(url: Any, **kwargs: Any) -> CallbackResult:
        bodies.append(kwargs["data"])
        return CallbackResult(body=QUEUES.replace(b"Paused", b"Active"))

    settings = ClientSettings(BUCKET, "ap-guangzhou", CREDS, endpoint="http://ci.test:9")
    with aioresponses() as mocked:
        mocked.get(re.compile(r"^http://ci\.test:9/picqueue.*"), body=QUEUES)
        mocked.put("http://ci.test:9/picqueue/p1", callback=update)
        async with CIClient(settings) as client:
            retrier = Retrier(RetryPolicy.for_tests())
            queue = await resolve_queue(client, retrier, queue_id=None, resume=True, where="m.toml")
    assert queue.state == "Active"
    notify = bodies[0].decode().split("<NotifyConfig>")[1].split("</NotifyConfig>")[0]
    assert notify == (
        "<Url>https://hooks.example.com/ci</Url><Event>TaskFinish</Event><Type>Url</Type>"
        "<State>On</State>"
    )
