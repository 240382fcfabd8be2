"""Pic jobs over loopback HTTP: submit, describe, list, cancel, and their errors."""

from __future__ import annotations

import re

import pytest

from tests.emulator.support import BUCKET, REGION, Client, job_xml, submit_ok

CI_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0800")


async def test_a_submitted_job_comes_back_submitted_with_its_input_and_operation_echoed(
    client: Client,
) -> None:
    body = job_xml(
        extra_operation="<UserData>batch-7</UserData><JobLevel>2</JobLevel>",
        extra="<CallBack>http://cb.example/x</CallBack><CallBackFormat>JSON</CallBackFormat>",
        queue_id=client.queue_id,
    )
    reply = await client.submit(body)

    assert reply.status == 200
    assert reply.headers["Server"] == "tencent-ci"
    assert reply.headers["x-ci-request-id"]
    assert reply.headers["Content-Type"].startswith("application/xml")
    detail = reply.xml().find("JobsDetail")
    assert detail is not None
    assert [child.tag for child in detail][:11] == [
        "Code", "Message", "JobId", "State", "CreationTime", "StartTime", "EndTime",
        "QueueId", "Tag", "Input", "Operation",
    ]  # fmt: skip
    assert detail.findtext("Code") == "Success"
    assert detail.findtext("Message") == ""
    assert re.fullmatch(r"c[0-9a-f]{32}", detail.findtext("JobId") or "")
    assert detail.findtext("State") == "Submitted"
    assert CI_TIME.fullmatch(detail.findtext("CreationTime") or "")
    assert detail.findtext("StartTime") == "-"
    assert detail.findtext("EndTime") == "-"
    assert detail.findtext("QueueId") == client.queue_id
    assert detail.findtext("Tag") == "PicProcess"
    assert detail.findtext("Input/BucketId") == BUCKET
    assert detail.findtext("Input/Object") == "photos/cat.jpg"
    assert detail.findtext("Input/Region") == REGION
    assert detail.findtext("Operation/PicProcess/ProcessRule") == "imageMogr2/rotate/90"
    assert detail.findtext("Operation/PicProcess/IsPicInfo") == "true"
    assert detail.findtext("Operation/Output/Object") == "out/cat.jpg"
    assert detail.findtext("Operation/Output/Bucket") == BUCKET
    assert detail.findtext("Operation/Output/Region") == REGION
    assert detail.findtext("Operation/UserData") == "batch-7"
    assert detail.findtext("Operation/JobLevel") == "2"
    assert detail.findtext("CallBack") == "http://cb.example/x"
    assert detail.findtext("CallBackFormat") == "JSON"
    assert detail.find("Operation/PicProcessResult") is None


async def test_a_finished_job_reports_the_flat_pic_process_result(client: Client) -> None:
    job_id = await submit_ok(client)

    reply = await client.request("GET", f"/pic_jobs/{job_id}")

    assert reply.status == 200
    detail = reply.xml().find("JobsDetail")
    assert detail is not None
    assert detail.findtext("State") == "Success"
    assert CI_TIME.fullmatch(detail.findtext("StartTime") or "")
    assert CI_TIME.fullmatch(detail.findtext("EndTime") or "")
    result = detail.find("Operation/PicProcessResult")
    assert result is not None
    assert result.findtext("ObjectName") == "out/cat.jpg"
    assert re.fullmatch(r'"[0-9a-f]{32}"', result.findtext("OriginalInfo/Etag") or "")
    info = result.find("OriginalInfo/ImageInfo")
    assert info is not None
    assert [child.tag for child in info] == [
        "Ave", "Format", "Height", "Orientation", "Quality", "Width",
    ]  # fmt: skip
    assert (info.findtext("Width"), info.findtext("Height")) == ("40", "20")
    processed = result.find("ProcessResult")
    assert processed is not None
    assert [child.tag for child in processed] == [
        "Etag", "Format", "Height", "Quality", "Size", "Width",
    ]  # fmt: skip
    assert processed.findtext("Etag") == ""
    assert (processed.findtext("Width"), processed.findtext("Height")) == ("20", "40")
    assert int(processed.findtext("Size") or 0) > 0


async def test_original_info_is_left_out_unless_is_pic_info_is_true(client: Client) -> None:
    job_id = await submit_ok(client, is_pic_info="false")

    reply = await client.request("GET", f"/pic_jobs/{job_id}")

    assert reply.text("JobsDetail/State") == "Success"
    assert reply.xml().find("JobsDetail/Operation/PicProcessResult/OriginalInfo") is None
    assert reply.text("JobsDetail/Operation/PicProcessResult/ProcessResult/Width") == "20"


async def test_several_jobs_are_described_at_once_and_unknown_ids_come_back_as_non_exist(
    client: Client,
) -> None:
    first = await submit_ok(client)
    second = await submit_ok(client, output_object="out/2.jpg")
    unknown = "c" + "0" * 32

    # The comma arrives percent-encoded and is signed decoded, as the Python SDK does.
    ids = [first, unknown, second]
    reply = await client.request(
        "GET", "/pic_jobs/" + ",".join(ids), wire_path="/pic_jobs/" + "%2C".join(ids)
    )

    assert reply.status == 200
    assert reply.texts("JobsDetail/JobId") == [first, second]
    assert reply.texts("NonExistJobIds") == [unknown]


async def test_describing_only_unknown_ids_is_still_a_200(client: Client) -> None:
    reply = await client.request("GET", "/pic_jobs/cnope1,cnope2")

    assert reply.status == 200
    assert reply.xml().find("JobsDetail") is None
    assert reply.texts("NonExistJobIds") == ["cnope1", "cnope2"]


async def test_post_jobs_with_no_queue_id_uses_the_pic_queue(client: Client) -> None:
    reply = await client.submit(job_xml(), path="/jobs")

    assert reply.status == 200
    assert reply.text("JobsDetail/QueueId") == client.queue_id
    assert reply.text("JobsDetail/State") == "Submitted"


async def test_a_template_id_wins_over_an_inline_rule(client: Client) -> None:
    template = (await client.control("GET", "templates"))[0]
    body = job_xml(
        queue_id=client.queue_id,
        rule="imageMogr2/rotate/90",
        extra_operation=f"<TemplateId>{template['id']}</TemplateId>",
    )
    job_id = (await client.submit(body)).text("JobsDetail/JobId")

    reply = await client.request("GET", f"/pic_jobs/{job_id}")

    assert reply.text("JobsDetail/Operation/TemplateId") == template["id"]
    assert reply.text("JobsDetail/Operation/TemplateName") == "picjobs-thumb-webp"
    result = "JobsDetail/Operation/PicProcessResult/ProcessResult/"
    assert reply.text(result + "Width") == "200"  # thumbnail/200x, not rotate/90
    assert (reply.text(result + "Format") or "").upper() == "WEBP"


@pytest.mark.parametrize(
    ("body_kwargs", "message"),
    [
        ({"tag": "Transcode"}, "Tag"),
        ({"input_object": ""}, "Input/Object"),
        ({"output_object": ""}, "Output/Object"),
        ({"output_bucket": "../etc"}, "Output/Bucket"),
        ({"rule": None}, "ProcessRule"),
        ({"is_pic_info": "yes"}, "IsPicInfo"),
        ({"extra_operation": "<JobLevel>3</JobLevel>"}, "JobLevel"),
        ({"extra_operation": "<JobLevel>high</JobLevel>"}, "JobLevel"),
        ({"extra_operation": "<UserData>" + "x" * 1025 + "</UserData>"}, "UserData"),
        ({"extra_operation": "<UserData>caf\u00e9</UserData>"}, "UserData"),
        ({"extra_operation": "<TemplateId>tnope</TemplateId>"}, "template"),
        ({"extra": "<CallBackFormat>YAML</CallBackFormat>"}, "CallBackFormat"),
        ({"extra": "<CallBackType>Kafka</CallBackType>"}, "CallBackType"),
        ({"extra": "<CallBackType>TDMQ</CallBackType>"}, "MqName"),
        ({"queue_id": "p" + "0" * 32}, "queue"),
    ],
)
async def test_an_invalid_submission_is_a_400_invalid_argument_with_a_ci_error_body(
    client: Client, body_kwargs: dict[str, str], message: str
) -> None:
    body_kwargs.setdefault("queue_id", client.queue_id)
    reply = await client.submit(job_xml(**body_kwargs))  # type: ignore[arg-type]

    assert reply.status == 400, reply.body
    error = reply.xml()
    assert error.tag == "Error"
    assert [child.tag for child in error] == ["Code", "Message", "RequestId", "TraceId"]
    assert error.findtext("Code") == "InvalidArgument"
    assert message in (error.findtext("Message") or "")
    assert error.findtext("RequestId") == reply.headers["x-ci-request-id"]
    assert reply.headers["x-ci-trace-id"] == error.findtext("TraceId")


async def test_pic_jobs_requires_a_queue_id(client: Client) -> None:
    reply = await client.submit(job_xml())

    assert reply.status == 400
    assert reply.text("Code") == "InvalidArgument"
    assert "QueueId" in (reply.text("Message") or "")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "MissingContent"),
        (b"<Request><Tag>PicProcess</Tag>", "InvalidContent"),
        (b"not xml at all", "InvalidContent"),
        (b"<Other/>", "InvalidContent"),
        (
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "boom">]><Request>&x;</Request>',
            "InvalidContent",
        ),
    ],
)
async def test_a_missing_or_malformed_body_is_a_400_with_an_error_body(
    client: Client, body: bytes, code: str
) -> None:
    reply = await client.request("POST", "/pic_jobs", body=body)

    assert reply.status == 400
    assert reply.text("Code") == code
    assert reply.xml().find("Resource") is None


async def test_a_body_over_a_megabyte_is_a_413(client: Client) -> None:
    reply = await client.request("POST", "/pic_jobs", body=b"<Request>" + b" " * (1 << 20))

    assert reply.status == 413
    assert reply.text("Code") == "InvalidContent"


async def test_a_submitted_job_can_be_cancelled_once_and_only_before_it_runs(
    client: Client,
) -> None:
    settings = {"progression": "delay", "job_seconds": 1000, "queue_max_concurrent": 1}
    await client.control("POST", "config", settings)
    running = await submit_ok(client)
    waiting = await submit_ok(client, output_object="out/2.jpg")
    await client.request("GET", "/picqueue")  # a touch: the first job starts

    cancelled = await client.request("PUT", f"/jobs/{waiting}", params={"cancel": ""})
    again = await client.request("PUT", f"/jobs/{waiting}", params={"cancel": ""})
    busy = await client.request("PUT", f"/jobs/{running}", params={"cancel": ""})
    unknown = await client.request("PUT", "/jobs/cnope", params={"cancel": ""})

    assert cancelled.status == 200
    assert cancelled.body == b""
    assert cancelled.headers["Content-Length"] == "0"
    assert [again.status, busy.status, unknown.status] == [400, 400, 400]
    assert {again.text("Code"), busy.text("Code"), unknown.text("Code")} == {"InvalidArgument"}
    states = await client.request("GET", f"/pic_jobs/{running},{waiting}")
    assert states.texts("JobsDetail/State") == ["Running", "Cancel"]


async def test_cancel_works_with_cancel_left_out_of_the_signature_as_the_sdk_does(
    client: Client,
) -> None:
    settings = {"progression": "delay", "job_seconds": 1000, "queue_max_concurrent": 1}
    await client.control("POST", "config", settings)
    await submit_ok(client)
    job_id = await submit_ok(client, output_object="out/2.jpg")

    reply = await client.request("PUT", f"/jobs/{job_id}", params={"cancel": ""}, signed_params={})

    assert reply.status == 200


async def test_a_job_whose_input_is_missing_is_accepted_then_fails_with_resource_not_found(
    client: Client,
) -> None:
    job_id = await submit_ok(client, input_object="photos/ghost.jpg")

    reply = await client.request("GET", f"/pic_jobs/{job_id}")

    assert reply.text("JobsDetail/State") == "Failed"
    assert reply.text("JobsDetail/Code") == "ResourceNotFound"
    assert reply.xml().find("JobsDetail/Operation/PicProcessResult") is None


async def test_an_unsupported_rule_fails_the_job_with_invalid_argument_and_the_reason(
    client: Client,
) -> None:
    job_id = await submit_ok(client, rule="imageMogr2/frobnicate/3")

    reply = await client.request("GET", f"/pic_jobs/{job_id}")

    assert reply.text("JobsDetail/State") == "Failed"
    assert reply.text("JobsDetail/Code") == "InvalidArgument"
    assert reply.text("JobsDetail/Message")


async def test_an_input_that_is_not_an_image_fails_with_resource_not_supported(
    client: Client,
) -> None:
    await client.request("PUT", "/notes.txt", body=b"hello", host="x")
    job_id = await submit_ok(client, input_object="notes.txt")

    reply = await client.request("GET", f"/pic_jobs/{job_id}")

    assert reply.text("JobsDetail/State") == "Failed"
    assert reply.text("JobsDetail/Code") == "ResourceNotSupported"
