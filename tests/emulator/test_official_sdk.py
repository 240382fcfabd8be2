"""Tencent's official Python SDK (qcloud_cos) against the emulator: it accepts every answer."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from qcloud_cos import CosConfig, CosS3Client
from qcloud_cos.cos_exception import CosServiceError

from orchestrator.emulator.server import EmulatorConfig, EmulatorThread
from tests.emulator.support import BUCKET, CREDS, REGION


@pytest.fixture
def server(config: EmulatorConfig) -> Iterator[EmulatorThread]:
    with EmulatorThread(config) as thread:
        yield thread


def sdk(server: EmulatorThread, secret_key: str = CREDS.secret_key) -> Any:
    conf = CosConfig(
        Region=REGION,
        SecretId=CREDS.secret_id,
        SecretKey=secret_key,
        IP="127.0.0.1",
        Port=server.port,
        Scheme="http",
    )
    return CosS3Client(conf, retry=0)


def control(server: EmulatorThread, name: str, payload: object) -> Any:
    request = urllib.request.Request(
        f"{server.url}/_emulator/{name}",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request) as answer:
        return json.load(answer)


def job(queue_id: str, key: str = "photos/cat.jpg", output: str = "sdk/out.jpg") -> dict[str, Any]:
    # The shape of the SDK's own demo (ci-api.md §14).
    return {
        "Input": {"Object": key},
        "Tag": "PicProcess",
        "Operation": {
            "PicProcess": {"IsPicInfo": "true", "ProcessRule": "imageMogr2/rotate/90"},
            "Output": {"Bucket": BUCKET, "Region": REGION, "Object": output},
            "JobLevel": "0",
        },
        "QueueId": queue_id,
        "CallBack": "http://cb.example/x",
        "CallBackFormat": "JSON",
    }


def test_the_sdk_submits_polls_and_lists_pic_jobs(server: EmulatorThread) -> None:
    client = sdk(server)
    control(server, "config", {"progression": "delay", "job_seconds": 30})

    queues = client.ci_get_media_pic_queue(Bucket=BUCKET)
    queue_id = queues["QueueList"][0]["QueueId"]
    created = client.ci_create_media_pic_jobs(
        Bucket=BUCKET, Jobs=job(queue_id), Lst={}, ContentType="application/xml"
    )
    job_id = created["JobsDetail"][0]["JobId"]
    assert created["JobsDetail"][0]["State"] == "Submitted"

    seen = []
    for _ in range(3):
        described = client.ci_get_media_pic_jobs(Bucket=BUCKET, JobIDs=f"{job_id},cmissing")
        seen.append(described["JobsDetail"][0]["State"])
        if seen[-1] == "Success":
            break
        control(server, "advance", {"seconds": 30})

    assert seen == ["Running", "Success"]
    assert described["NonExistJobIds"] == "cmissing"
    result = described["JobsDetail"][0]["Operation"]["PicProcessResult"]
    assert result["ObjectName"] == "sdk/out.jpg"
    assert result["ProcessResult"]["Width"] == "20"
    assert result["OriginalInfo"]["ImageInfo"]["Width"] == "40"

    listed = client.ci_list_media_pic_jobs(Bucket=BUCKET, Tag="PicProcess", QueueId=queue_id)
    assert [j["JobId"] for j in listed["JobsDetail"]] == [job_id]
    assert listed["NextToken"] is None  # an empty element


def test_the_sdk_reads_and_updates_the_pic_queue_and_cancels_a_held_job(
    server: EmulatorThread,
) -> None:
    client = sdk(server)
    queue_id = client.ci_get_media_pic_queue(Bucket=BUCKET)["QueueList"][0]["QueueId"]

    updated = client.ci_update_media_pic_queue(
        Bucket=BUCKET,
        QueueId=queue_id,
        Request={
            "QueueID": queue_id,
            "Name": "sdk-queue",
            "State": "Paused",
            "NotifyConfig": {"State": "Off"},
        },
    )

    assert updated["Queue"][0]["Name"] == "sdk-queue"
    assert updated["Queue"][0]["State"] == "Paused"
    paused = client.ci_get_media_pic_queue(Bucket=BUCKET, State="Paused")
    assert [q["QueueId"] for q in paused["QueueList"]] == [queue_id]

    held = client.ci_create_media_pic_jobs(
        Bucket=BUCKET, Jobs=job(queue_id), Lst={}, ContentType="application/xml"
    )["JobsDetail"][0]
    assert held["State"] == "Pause"
    assert client.ci_cancel_jobs(Bucket=BUCKET, JobID=held["JobId"]) == ""
    after = client.ci_get_media_pic_jobs(Bucket=BUCKET, JobIDs=held["JobId"])
    assert after["JobsDetail"][0]["State"] == "Cancel"


def test_the_sdk_lists_objects_and_decodes_awkward_keys(server: EmulatorThread) -> None:
    client = sdk(server)
    key = "sdk dir/a+b&c%d#e?f 腾讯云.jpg"
    client.put_object(Bucket=BUCKET, Body=b"bytes", Key=key)

    listed = client.list_objects(Bucket=BUCKET, Prefix="", Delimiter="/")
    nested = client.list_objects(Bucket=BUCKET, Prefix="sdk dir/")

    assert [p["Prefix"] for p in listed["CommonPrefixes"]] == ["photos/", "sdk dir/"]
    assert [c["Key"] for c in nested["Contents"]] == [key]
    assert nested["Contents"][0]["Size"] == "5"
    assert client.get_object(Bucket=BUCKET, Key=key)["Body"].get_raw_stream().read() == b"bytes"


def test_a_wrong_secret_key_is_rejected_with_401_on_ci_and_403_on_cos(
    server: EmulatorThread,
) -> None:
    client = sdk(server, secret_key="wrong")

    with pytest.raises(CosServiceError) as ci_error:
        client.ci_get_media_pic_queue(Bucket=BUCKET)
    with pytest.raises(CosServiceError) as cos_error:
        client.list_objects(Bucket=BUCKET)

    assert ci_error.value.get_status_code() == 401
    assert "InvalidAuthorization" in ci_error.value.get_origin_msg()
    assert cos_error.value.get_status_code() == 403
    assert cos_error.value.get_error_code() == "SignatureDoesNotMatch"
