"""The /_emulator/ control endpoints."""

from __future__ import annotations

import pytest

from tests.emulator.support import BUCKET, REGION, Client, submit_ok


async def test_stats_count_requests_responses_and_duplicate_submissions(client: Client) -> None:
    await submit_ok(client)
    await submit_ok(client)
    await submit_ok(client, output_object="out/other.jpg")
    await client.request("GET", "/pic_jobs/cnope")

    stats = await client.control("GET", "stats")

    assert stats["requests"] == {"GET /pic_jobs/{ids}": 1, "POST /pic_jobs": 3}
    assert stats["responses"] == {"200": 4}
    assert stats["jobs_created"] == 3
    assert stats["duplicate_pairs"] == 1
    assert stats["duplicate_submissions"] == 1
    assert {
        "input_bucket": BUCKET,
        "input_object": "photos/cat.jpg",
        "output_bucket": BUCKET,
        "output_object": "out/cat.jpg",
        "count": 2,
    } in stats["submissions"]
    assert stats["jobs"]["Success"] == 3
    assert "ci_request_times" not in stats


async def test_stats_can_include_ci_arrival_times_for_pacing_checks(client: Client) -> None:
    for _ in range(3):
        await client.request("GET", "/picqueue")
    await client.request("GET", "/", host="x")

    times = (await client.control("GET", "stats?times=1"))["ci_request_times"]

    assert len(times) == 3
    assert times == sorted(times)


async def test_advance_moves_the_emulator_clock(client: Client) -> None:
    answer = await client.control("POST", "advance", {"seconds": 86400})

    assert answer["offset"] == 86400
    assert answer["now"].endswith("+0800")


async def test_a_created_template_can_be_used_by_id(client: Client) -> None:
    made = await client.control(
        "POST",
        "templates",
        {"id": "t" + "1" * 32, "name": "spin", "rule": "imageMogr2/rotate/90", "is_pic_info": True},
    )
    body_extra = f"<TemplateId>{made['id']}</TemplateId>"

    job_id = await submit_ok(client, rule=None, extra_operation=body_extra)
    reply = await client.request("GET", f"/pic_jobs/{job_id}")

    assert made == {
        "id": "t" + "1" * 32,
        "name": "spin",
        "rule": "imageMogr2/rotate/90",
        "is_pic_info": True,
    }
    assert reply.text("JobsDetail/Operation/TemplateName") == "spin"
    assert reply.text("JobsDetail/Operation/PicProcessResult/OriginalInfo/ImageInfo/Width") == "40"
    assert reply.text("JobsDetail/Operation/PicProcessResult/ProcessResult/Width") == "20"


async def test_config_reports_and_changes_settings(client: Client) -> None:
    before = await client.control("GET", "config")
    after = await client.control("POST", "config", {"progression": "delay", "job_seconds": 5})

    assert before["progression"] == "instant"
    assert after["progression"] == "delay"
    assert after["job_seconds"] == 5
    assert after["queue_max_concurrent"] == 10


async def test_config_can_stop_storing_outputs_until_the_next_reset(client: Client) -> None:
    assert (await client.control("GET", "config"))["write_outputs"] is True

    changed = await client.control("POST", "config", {"write_outputs": False})
    await client.control("POST", "reset")

    assert changed["write_outputs"] is False
    assert (await client.control("GET", "config"))["write_outputs"] is True


async def test_reset_clears_jobs_stats_faults_and_settings(client: Client) -> None:
    job_id = await submit_ok(client)
    await client.control("POST", "faults", {"error_500": 0.5})
    await client.control("POST", "config", {"progression": "delay"})

    await client.control("POST", "reset")

    stats = await client.control("GET", "stats")
    assert stats["jobs_created"] == 0 and stats["requests"] == {}
    assert (await client.control("GET", "faults"))["error_500"] == 0
    assert (await client.control("GET", "config"))["progression"] == "instant"
    reply = await client.request("GET", f"/pic_jobs/{job_id}")
    assert reply.texts("NonExistJobIds") == [job_id]


async def test_info_names_the_default_bucket_and_queue(client: Client) -> None:
    info = await client.control("GET", "info")

    assert info["default_bucket"] == BUCKET
    assert info["region"] == REGION
    assert info["queue_id"] == client.queue_id
    assert info["signatures"] is True
    assert [t["name"] for t in info["templates"]] == ["picjobs-thumb-webp"]


@pytest.mark.parametrize(
    ("method", "name", "payload", "status"),
    [
        ("GET", "reset", None, 405),
        ("GET", "nowhere", None, 404),
        ("POST", "advance", {"seconds": -1}, 400),
        ("POST", "advance", {}, 400),
        ("POST", "templates", {"name": "x", "rule": "imageMogr2/frobnicate/1"}, 400),
        ("POST", "config", {"progression": "eventually"}, 400),
        ("POST", "config", {"queue_max_size": 0}, 400),
        ("POST", "config", {"colour": "blue"}, 400),
        ("POST", "config", {"write_outputs": "no"}, 400),
    ],
)
async def test_bad_control_requests_are_refused_with_a_json_error(
    client: Client, method: str, name: str, payload: object, status: int
) -> None:
    url = f"{client.emu.url}/_emulator/{name}"
    async with client.session.request(method, url, json=payload) as r:
        assert r.status == status
        assert "error" in await r.json()
