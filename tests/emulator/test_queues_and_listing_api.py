"""Pic queues and job listing over HTTP."""

from __future__ import annotations

import re

import pytest

from tests.emulator.support import Client, job_xml, submit_ok

LIST = {"tag": "PicProcess", "orderByTime": "Desc", "states": "All", "size": "10", "nextToken": ""}

UPDATE = (
    b"<Request><Name>renamed</Name><State>{state}</State><NotifyConfig><State>On</State>"
    b"<Event>TaskFinish</Event><Type>Url</Type><Url>http://cb.example/hook</Url>"
    b"<ResultFormat>JSON</ResultFormat></NotifyConfig></Request>"
)


def update_body(state: str) -> bytes:
    return UPDATE.replace(b"{state}", state.encode())


async def test_the_pic_queue_is_listed_with_its_limits_as_the_sdk_asks(client: Client) -> None:
    params = {"queueIds": "", "state": "All", "pageNumber": "", "pageSize": ""}
    reply = await client.request("GET", "/picqueue", params=params)

    assert reply.status == 200
    root = reply.xml()
    assert root.findtext("RequestId") == reply.headers["x-ci-request-id"]
    assert root.find("TotalCount") is None  # only when the client pages
    queue = root.find("QueueList")
    assert queue is not None
    assert queue.findtext("QueueId") == client.queue_id
    assert re.fullmatch(r"p[0-9a-f]{32}", queue.findtext("QueueId") or "")
    assert queue.findtext("State") == "Active"
    assert queue.findtext("MaxSize") == "10000"
    assert queue.findtext("MaxConcurrent") == "10"
    assert queue.findtext("Category") == "PicProcessing"
    assert queue.findtext("NotifyConfig/State") == "Off"


async def test_paging_queues_returns_total_count_and_unknown_ids_are_non_exist(
    client: Client,
) -> None:
    params = {"queueIds": f"{client.queue_id},pA,pB", "pageNumber": "1", "pageSize": "10"}
    reply = await client.request("GET", "/picqueue", params=params)

    assert reply.status == 200
    assert [reply.text(t) for t in ("TotalCount", "PageNumber", "PageSize")] == ["1", "1", "10"]
    assert reply.texts("QueueList/QueueId") == [client.queue_id]
    assert reply.texts("NonExistPIDs") == ["pA", "pB"]


async def test_queues_are_filtered_by_state_and_a_bad_state_is_invalid_argument(
    client: Client,
) -> None:
    paused = await client.request("GET", "/picqueue", params={"state": "Paused"})
    bad = await client.request("GET", "/picqueue", params={"state": "Sleeping"})

    assert paused.status == 200 and paused.xml().find("QueueList") is None
    assert bad.status == 400 and bad.text("Code") == "InvalidArgument"


async def test_updating_the_queue_answers_with_the_new_queue(client: Client) -> None:
    reply = await client.request("PUT", f"/picqueue/{client.queue_id}", body=update_body("Active"))

    assert reply.status == 200
    queue = reply.xml().find("Queue")
    assert reply.text("RequestId")
    assert queue is not None
    assert queue.findtext("Name") == "renamed"
    assert queue.findtext("NotifyConfig/Url") == "http://cb.example/hook"
    assert queue.findtext("NotifyConfig/ResultFormat") == "JSON"
    assert queue.findtext("NotifyConfig/State") == "On"


@pytest.mark.parametrize(
    "body",
    [
        b"<Request><Name>q</Name><State>Sleeping</State><NotifyConfig/></Request>",
        b"<Request><State>Active</State><NotifyConfig/></Request>",
        b"<Request><Name>q</Name><State>Active</State></Request>",
        b"<Request><Name>q</Name><State>Active</State><NotifyConfig><State>On</State>"
        b"<Type>Url</Type><Url>http://x</Url></NotifyConfig></Request>",
        b"<Request><Name>q</Name><State>Active</State><NotifyConfig><State>On</State>"
        b"<Event>TaskFinish</Event><Type>Url</Type></NotifyConfig></Request>",
    ],
)
async def test_an_invalid_queue_update_is_invalid_argument(client: Client, body: bytes) -> None:
    reply = await client.request("PUT", f"/picqueue/{client.queue_id}", body=body)

    assert reply.status == 400
    assert reply.text("Code") == "InvalidArgument"


async def test_updating_an_unknown_queue_is_invalid_argument(client: Client) -> None:
    reply = await client.request("PUT", "/picqueue/p" + "0" * 32, body=update_body("Active"))

    assert reply.status == 400
    assert reply.text("Code") == "InvalidArgument"


async def test_a_paused_queue_holds_new_jobs_in_pause_until_resumed(client: Client) -> None:
    await client.request("PUT", f"/picqueue/{client.queue_id}", body=update_body("Paused"))
    submitted = await client.submit(job_xml(queue_id=client.queue_id))
    job_id = submitted.text("JobsDetail/JobId")
    assert submitted.text("JobsDetail/State") == "Pause"
    assert (await client.request("GET", f"/pic_jobs/{job_id}")).text("JobsDetail/State") == "Pause"

    await client.request("PUT", f"/picqueue/{client.queue_id}", body=update_body("Active"))

    assert (await client.request("GET", f"/pic_jobs/{job_id}")).text("JobsDetail/State") == (
        "Success"
    )


async def test_a_full_queue_answers_403_queue_saturated(client: Client) -> None:
    settings = {"progression": "delay", "job_seconds": 1000, "queue_max_size": 2}
    await client.control("POST", "config", {**settings, "queue_max_concurrent": 1})
    for n in range(3):  # one runs, two wait
        await submit_ok(client, output_object=f"out/{n}.jpg")
    await client.request("GET", "/picqueue")

    reply = await client.submit(job_xml(queue_id=client.queue_id))

    assert reply.status == 403
    assert reply.text("Code") == "QueueSaturated"


async def test_max_concurrent_is_respected_as_emulator_time_advances(client: Client) -> None:
    settings = {"progression": "delay", "job_seconds": 60, "queue_max_concurrent": 2}
    await client.control("POST", "config", settings)
    ids = [await submit_ok(client, output_object=f"out/{n}.jpg") for n in range(5)]

    async def states() -> list[str]:
        reply = await client.request("GET", "/pic_jobs/" + ",".join(ids))
        return reply.texts("JobsDetail/State")

    assert await states() == ["Running"] * 2 + ["Submitted"] * 3
    await client.control("POST", "advance", {"seconds": 60})
    assert await states() == ["Success"] * 2 + ["Running"] * 2 + ["Submitted"]
    await client.control("POST", "advance", {"seconds": 120})
    assert await states() == ["Success"] * 5


async def test_listing_pages_with_next_token_and_ends_with_an_empty_one(client: Client) -> None:
    ids = [await submit_ok(client, output_object=f"out/{n}.jpg") for n in range(5)]

    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        params = {**LIST, "size": "2", "nextToken": token, "queueId": client.queue_id}
        reply = await client.request("GET", "/pic_jobs", params=params)
        assert reply.status == 200
        seen += reply.texts("JobsDetail/JobId")
        pages += 1
        assert reply.xml().find("NextToken") is not None
        token = reply.text("NextToken") or ""
        if not token:
            break

    assert seen == ids[::-1]
    assert pages == 3


async def test_listing_filters_by_state_order_and_input_object(client: Client) -> None:
    cat = await submit_ok(client)
    dog = await submit_ok(client, input_object="photos/dog.png", output_object="out/dog.png")
    ghost = await submit_ok(client, input_object="ghost.jpg", output_object="out/ghost.jpg")

    async def listed(**params: str) -> list[str]:
        reply = await client.request("GET", "/pic_jobs", params={**LIST, **params})
        assert reply.status == 200, reply.body
        return reply.texts("JobsDetail/JobId")

    assert await listed(orderByTime="Asc") == [cat, dog, ghost]
    assert await listed(states="Failed") == [ghost]
    assert await listed(states="Success,Failed") == [ghost, dog, cat]
    assert await listed(inputObject="photos/dog.png") == [dog]
    assert await listed(startCreationTime="2001-01-01T00:00:00+0800") == [ghost, dog, cat]
    assert await listed(endCreationTime="2001-01-01T00:00:00+0800") == []


@pytest.mark.parametrize(
    "params",
    [
        {"size": "101"},
        {"size": "0"},
        {"size": "ten"},
        {"orderByTime": "Sideways"},
        {"states": "Done"},
        {"tag": "Transcode"},
        {"startCreationTime": "yesterday"},
        {"nextToken": "not-a-token"},
    ],
)
async def test_a_bad_list_parameter_is_a_400_invalid_argument(
    client: Client, params: dict[str, str]
) -> None:
    reply = await client.request("GET", "/pic_jobs", params={**LIST, **params})

    assert reply.status == 400
    assert reply.text("Code") == "InvalidArgument"
