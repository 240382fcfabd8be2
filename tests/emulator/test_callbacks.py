"""Job callbacks: a small receiver on loopback gets one POST per finished job, with the body of
ci-api.md §8, from the job's CallBack or the queue's NotifyConfig, retried, and counted."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace

import pytest
from aiohttp import web
from lxml import etree

from orchestrator.emulator.callbacks import CallbackPolicy
from orchestrator.emulator.model import JobRequest, Output
from orchestrator.emulator.server import EmulatorConfig, RunningEmulator
from tests.emulator.support import BUCKET, Client, escape, submit_ok

DETAIL = [
    "Code", "CreationTime", "EndTime", "Input", "JobId", "Message", "Operation", "QueueId",
    "StartTime", "State", "Tag",
]  # fmt: skip


@dataclass
class Receiver:
    """Records every POST; answers the statuses in `answers` first, then 200."""

    url: str = ""
    posts: list[tuple[str, str, bytes]] = field(default_factory=list)  # path, type, body
    answers: list[int] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.posts.append((request.path, request.content_type, await request.read()))
        return web.Response(status=self.answers.pop(0) if self.answers else 200)

    def xml(self, index: int = 0) -> etree._Element:
        return etree.fromstring(self.posts[index][2])

    def json(self, index: int = 0) -> dict[str, object]:
        data = json.loads(self.posts[index][2])
        assert isinstance(data, dict)
        return data


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    found.url = f"http://127.0.0.1:{port}"
    try:
        yield found
    finally:
        await runner.cleanup()


@pytest.fixture
def config(config: EmulatorConfig) -> EmulatorConfig:
    return replace(config, callbacks=CallbackPolicy(backoff=0))


def callback(url: str, fmt: str | None = None) -> str:
    body = f"<CallBack>{escape(url)}</CallBack>"
    return body + (f"<CallBackFormat>{fmt}</CallBackFormat>" if fmt else "")


async def finish(client: Client) -> dict[str, int]:
    """Let submitted jobs finish, wait for their callbacks, and return the callback counts."""
    await client.request("GET", "/pic_jobs/cnone")  # any request moves jobs forward
    await client.emu.emulator.notifier.drain()
    stats = await client.control("GET", "stats")
    return {k: v for k, v in stats["callbacks"].items() if k != "failures"}


async def set_queue_notify(
    client: Client, url: str, *, fmt: str = "XML", state: str = "On", event: str = "TaskFinish"
) -> None:
    body = (
        "<Request><Name>q</Name><State>Active</State><NotifyConfig>"
        f"<Url>{escape(url)}</Url><Event>{event}</Event><Type>Url</Type>"
        f"<State>{state}</State><ResultFormat>{fmt}</ResultFormat>"
        "</NotifyConfig></Request>"
    ).encode()
    reply = await client.request("PUT", f"/picqueue/{client.queue_id}", body=body)
    assert reply.status == 200, reply.body


async def test_a_job_with_a_callback_url_posts_one_xml_body_with_the_documented_fields(
    client: Client, receiver: Receiver
) -> None:
    job_id = await submit_ok(client, extra=callback(f"{receiver.url}/hook"))

    counts = await finish(client)

    assert counts == {
        "queued": 1, "sent": 1, "failed": 0, "refused": 0, "attempts": 1, "retries": 0,
    }  # fmt: skip
    assert len(receiver.posts) == 1
    path, content_type, _ = receiver.posts[0]
    assert (path, content_type) == ("/hook", "application/xml")
    root = receiver.xml()
    assert root.tag == "Response"
    assert root.findtext("EventName") == "TaskFinish"
    detail = root.find("JobsDetail")
    assert detail is not None
    assert [child.tag for child in detail] == DETAIL
    assert detail.findtext("JobId") == job_id
    assert (detail.findtext("State"), detail.findtext("Code")) == ("Success", "Success")
    assert detail.findtext("Tag") == "PicProcess"
    assert detail.findtext("QueueId") == client.queue_id
    assert detail.findtext("Input/BucketId") == BUCKET
    assert detail.findtext("Input/Object") == "photos/cat.jpg"
    operation = detail.find("Operation")
    assert operation is not None
    assert [child.tag for child in operation] == [
        "Output", "PicProcess", "PicProcessResult", "JobLevel",
    ]  # fmt: skip
    assert [child.tag for child in operation.iterfind("Output/*")] == ["Bucket", "Object", "Region"]
    assert operation.findtext("Output/Object") == "out/cat.jpg"
    assert operation.findtext("PicProcessResult/ObjectName") == "out/cat.jpg"
    assert operation.findtext("PicProcessResult/ProcessResult/Width") == "20"
    assert detail.find("CallBack") is None


async def test_a_json_callback_has_string_leaves_and_leaves_out_empty_ones(
    client: Client, receiver: Receiver
) -> None:
    job_id = await submit_ok(client, extra=callback(receiver.url, "JSON"))
    await finish(client)

    assert receiver.posts[0][1] == "application/json"
    body = receiver.json()
    assert body["EventName"] == "TaskFinish"
    detail = body["JobsDetail"]
    assert isinstance(detail, dict)
    assert detail["JobId"] == job_id
    assert detail["State"] == "Success"
    assert "Message" not in detail
    result = detail["Operation"]["PicProcessResult"]
    assert result["ProcessResult"]["Width"] == "20"
    assert "Etag" not in result["ProcessResult"]
    assert result["OriginalInfo"]["ImageInfo"]["Width"] == "40"


async def test_every_finished_job_is_notified_once_failed_ones_too(
    client: Client, receiver: Receiver
) -> None:
    ids = [
        await submit_ok(client, extra=callback(receiver.url), output_object=f"out/{n}.jpg")
        for n in range(3)
    ]
    failed = await submit_ok(client, input_object="photos/none.jpg", extra=callback(receiver.url))

    counts = await finish(client)

    assert (counts["queued"], counts["sent"]) == (4, 4)
    details = [receiver.xml(i).find("JobsDetail") for i in range(4)]
    by_id = {d.findtext("JobId"): d for d in details if d is not None}
    assert sorted(by_id) == sorted([*ids, failed])
    assert by_id[failed].findtext("State") == "Failed"
    assert by_id[failed].findtext("Code") == "ResourceNotFound"
    assert by_id[failed].findtext("Message")


async def test_the_queue_notify_config_is_used_in_its_result_format_and_callback_no_silences_it(
    client: Client, receiver: Receiver
) -> None:
    await set_queue_notify(client, f"{receiver.url}/queue", fmt="JSON")
    silenced = await submit_ok(client, extra="<CallBack>no</CallBack>")
    notified = await submit_ok(client, output_object="out/2.jpg")
    own = await submit_ok(client, output_object="out/3.jpg", extra=callback(f"{receiver.url}/own"))

    counts = await finish(client)

    assert counts["sent"] == 2
    posts = {path: body for path, _, body in receiver.posts}
    assert set(posts) == {"/queue", "/own"}
    assert json.loads(posts["/queue"])["JobsDetail"]["JobId"] == notified
    # The job's own URL, in the queue's ResultFormat since the job names none.
    assert json.loads(posts["/own"])["JobsDetail"]["JobId"] == own
    assert silenced not in {json.loads(body)["JobsDetail"]["JobId"] for body in posts.values()}


@pytest.mark.parametrize(("state", "event"), [("Off", "TaskFinish"), ("On", "WorkflowFinish")])
async def test_a_queue_notification_that_is_off_or_for_workflows_sends_nothing(
    client: Client, receiver: Receiver, state: str, event: str
) -> None:
    await set_queue_notify(client, receiver.url, state=state, event=event)
    await submit_ok(client)

    counts = await finish(client)

    assert counts["queued"] == 0
    assert receiver.posts == []


async def test_a_failing_endpoint_is_retried_and_then_counted_as_failed(
    client: Client, receiver: Receiver
) -> None:
    receiver.answers = [500, 503]
    await submit_ok(client, extra=callback(receiver.url))
    first = await finish(client)
    receiver.answers = [500] * 4
    job_id = await submit_ok(client, extra=callback(receiver.url), output_object="out/2.jpg")
    second = await finish(client)

    assert (first["attempts"], first["retries"], first["sent"]) == (3, 2, 1)
    assert (second["attempts"] - 3, second["failed"]) == (4, 1)
    assert len(receiver.posts) == 7
    stats = await client.control("GET", "stats")
    assert stats["callbacks"]["failures"] == [
        {"outcome": "failed", "job_id": job_id, "host": "127.0.0.1", "reason": "HTTP 500"}
    ]


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3/hook",
        "http://192.168.0.10:8080/hook",
        "http://[fd00::1]/hook",
        "http://8.8.8.8/hook",
        "http://hooks.example.com/hook",
        "ftp://127.0.0.1/hook",
    ],
)
async def test_a_callback_to_anything_but_loopback_is_refused_by_default(
    client: Client, url: str
) -> None:
    job_id = await submit_ok(client, extra=callback(url))

    counts = await finish(client)

    assert (counts["refused"], counts["attempts"]) == (1, 0)
    stats = await client.control("GET", "stats")
    assert stats["callbacks"]["failures"][0]["job_id"] == job_id


async def test_localhost_by_name_is_loopback(receiver: Receiver, client: Client) -> None:
    url = receiver.url.replace("127.0.0.1", "localhost")
    await submit_ok(client, extra=callback(url))

    counts = await finish(client)

    assert counts["sent"] == 1


async def test_jobs_that_would_notify_finish_without_any_further_request(
    emu: RunningEmulator, receiver: Receiver
) -> None:
    request = JobRequest(
        input_object="photos/cat.jpg",
        output=Output("ap-guangzhou", BUCKET, "out/x.jpg"),
        process_rule="imageMogr2/rotate/90",
        callback=receiver.url,
    )
    emu.backend.submit(BUCKET, request, queue_required=False)

    # What the emulator's watcher does every `poll` seconds, with no request coming in.
    await emu.emulator.notifier.drain()

    assert len(receiver.posts) == 1


ADDRESS = ipaddress.ip_address


@pytest.mark.parametrize(
    ("allow", "host", "address", "permitted"),
    [
        ((), "127.0.0.1", "127.0.0.1", True),
        ((), "localhost", "::1", True),
        ((), "10.0.0.1", "10.0.0.1", False),
        ((), "8.8.8.8", "8.8.8.8", False),
        (("public",), "8.8.8.8", "8.8.8.8", True),
        (("public",), "192.168.1.1", "192.168.1.1", False),
        (("public",), "169.254.169.254", "169.254.169.254", False),
        (("10.0.0.0/8",), "10.9.9.9", "10.9.9.9", True),
        (("10.0.0.0/8",), "172.16.0.1", "172.16.0.1", False),
        (("hooks.example.com",), "hooks.example.com", "8.8.8.8", True),
        (("hooks.example.com",), "HOOKS.example.com.", "8.8.8.8", True),
        (("hooks.example.com",), "hooks.example.com", "10.0.0.5", False),
        (("hooks.example.com",), "other.example.com", "8.8.8.8", False),
    ],
)
def test_the_policy_allows_loopback_and_what_the_flag_names_and_no_other_private_address(
    allow: tuple[str, ...], host: str, address: str, permitted: bool
) -> None:
    assert CallbackPolicy(allow=allow).permits(host, ADDRESS(address)) is permitted


@pytest.mark.parametrize("entry", ["", "http://x", "a b", "10.0.0.0/33"])
def test_the_policy_refuses_entries_it_cannot_read(entry: str) -> None:
    with pytest.raises(ValueError, match="not an address"):
        CallbackPolicy(allow=(entry,))
