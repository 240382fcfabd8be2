"""Parsing CI and COS answers, including every shape the wire reference calls uncertain."""

from __future__ import annotations

import pytest

from orchestrator.cloud import wire
from orchestrator.cloud.models import JobRequest
from orchestrator.exceptions import Disposition, ResponseError

FLAT = b"""<Response><JobsDetail>
  <Code>Success</Code><Message/><JobId>c93984788066911ed89ed352d4d9d2084</JobId>
  <State>Success</State><CreationTime>2022-07-18T15:16:43+0800</CreationTime>
  <StartTime>2022-07-18T15:16:44+0800</StartTime><EndTime>2022-07-18T15:16:45+0800</EndTime>
  <QueueId>p8366c460c67b4c65a9bf81b41eaa3c4b</QueueId><Tag>PicProcess</Tag>
  <Input><BucketId>test-1234567890</BucketId><Object>input/deer.jpg</Object><Region>ap-chongqing</Region></Input>
  <Operation><Output><Bucket>test-1234567890</Bucket><Object>out/deer.webp</Object><Region>ap-chongqing</Region></Output>
    <PicProcessResult><ObjectName>out/deer.webp</ObjectName>
      <OriginalInfo><Etag>"d5a4"</Etag><ImageInfo><Ave>0xc64847</Ave><Format>JPEG</Format><Height>417</Height>
        <Orientation>0</Orientation><Quality>68</Quality><Width>500</Width></ImageInfo></OriginalInfo>
      <ProcessResult><Etag/><Format>WEBP</Format><Height>500</Height><Quality>68</Quality><Size>24911</Size><Width>417</Width></ProcessResult>
    </PicProcessResult><JobLevel>2</JobLevel><UserData>u1</UserData></Operation>
</JobsDetail></Response>"""

UPLOAD_SHAPE = b"""<Response><JobsDetail><JobId>c1</JobId><State>Success</State>
  <Input><Bucket>b-1</Bucket><Object>a.jpg</Object></Input>
  <Operation><PicProcessResult><UploadResult>
    <OriginalInfo><Key>a.jpg</Key><ETag>"e1"</ETag><ImageInfo><Format>PNG</Format><Width>10</Width><Height>20</Height></ImageInfo></OriginalInfo>
    <ProcessResults><Object><Key>o.webp</Key><Format>webp</Format><Width>5</Width><Height>10</Height><Size>99</Size><ETag>"e2"</ETag></Object></ProcessResults>
  </UploadResult></PicProcessResult></Operation></JobsDetail></Response>"""


def test_flat_pic_process_result_is_parsed_with_times_and_echoes() -> None:
    job = wire.parse_submit(FLAT)
    assert (job.job_id, job.state, job.input_bucket, job.input_object) == (
        "c93984788066911ed89ed352d4d9d2084",
        "Success",
        "test-1234567890",
        "input/deer.jpg",
    )
    assert (job.output_bucket, job.output_object, job.job_level, job.user_data) == (
        "test-1234567890",
        "out/deer.webp",
        2,
        "u1",
    )
    assert job.result is not None
    assert job.result.as_dict() == {
        "object_name": "out/deer.webp",
        "format": "WEBP",
        "width": 417,
        "height": 500,
        "size": 24911,
        "quality": 68,
        "original": {
            "etag": '"d5a4"',
            "format": "JPEG",
            "width": 500,
            "height": 417,
            "quality": 68,
            "ave": "0xc64847",
            "orientation": 0,
        },
    }


def test_upload_result_shape_and_bucket_instead_of_bucket_id_are_accepted() -> None:
    job = wire.parse_describe(UPLOAD_SHAPE).jobs[0]
    assert job.input_bucket == "b-1"
    assert job.result is not None
    assert (job.result.object_name, job.result.width, job.result.size, job.result.etag) == (
        "o.webp",
        5,
        99,
        '"e2"',
    )
    assert job.result.original == {"etag": '"e1"', "format": "PNG", "width": 10, "height": 20}


def test_dash_times_mean_not_set() -> None:
    body = b"<Response><JobsDetail><JobId>c1</JobId><State>Submitted</State><StartTime>-</StartTime></JobsDetail></Response>"
    job = wire.parse_submit(body)
    assert (job.start_time, job.end_time, job.result) == (None, None, None)


def test_describe_reports_non_existent_ids_given_singly_or_comma_joined() -> None:
    body = b"<Response><NonExistJobIds>c2</NonExistJobIds><NonExistJobIds>c3,c4</NonExistJobIds></Response>"
    assert wire.parse_describe(body).missing == ["c2", "c3", "c4"]


@pytest.mark.parametrize(
    ("tail", "token"),
    [(b"<NextToken>225508</NextToken>", "225508"), (b"<NextToken/>", None), (b"", None)],
)
def test_next_token_may_be_present_empty_or_absent(tail: bytes, token: str | None) -> None:
    body = (
        b"<Response><JobsDetail><JobId>c1</JobId><State>Running</State></JobsDetail>"
        + tail
        + b"</Response>"
    )
    page = wire.parse_job_page(body)
    assert (len(page.jobs), page.next_token) == (1, token)


def test_queue_list_tolerates_missing_total_count_and_reports_unknown_ids() -> None:
    body = b"""<Response><RequestId>r</RequestId><QueueList><QueueId>p1</QueueId><Name>q</Name>
      <State>Paused</State><MaxSize>10000</MaxSize><MaxConcurrent>10</MaxConcurrent>
      <NotifyConfig><State>Off</State></NotifyConfig><BucketId>b-1</BucketId></QueueList>
      <NonExistPIDs>A</NonExistPIDs><NonExistPIDs>B</NonExistPIDs></Response>"""
    page = wire.parse_queue_page(body)
    assert page.total_count is None
    assert page.missing == ["A", "B"]
    q = page.queues[0]
    assert (q.queue_id, q.state, q.max_size, q.max_concurrent, q.notify) == (
        "p1",
        "Paused",
        10000,
        10,
        {"State": "Off"},
    )


def test_url_encoded_listing_is_decoded_and_etag_unquoted() -> None:
    body = b"""<ListBucketResult xmlns="http://doc.s3.amazonaws.com/2006-03-01"><Name>b</Name>
      <EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
      <NextMarker>a%2Bb%20%E8%85%BE.jpg</NextMarker>
      <Contents><Key>a%2Bb%20%E8%85%BE.jpg</Key><LastModified>2020-12-10T03:37:30.000Z</LastModified>
      <ETag>&quot;f173&quot;</ETag><Size>37</Size><StorageClass>STANDARD</StorageClass></Contents>
      <CommonPrefixes><Prefix>dir%2F</Prefix></CommonPrefixes></ListBucketResult>"""
    page = wire.parse_object_page(body)
    assert [(e.key, e.size, e.etag) for e in page.entries] == [("a+b 腾.jpg", 37, "f173")]
    assert (page.is_truncated, page.next_marker, page.common_prefixes) == (
        True,
        "a+b 腾.jpg",
        ["dir/"],
    )


def test_truncated_listing_without_next_marker_continues_after_the_last_key() -> None:
    body = b"<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>k9</Key></Contents></ListBucketResult>"
    assert wire.parse_object_page(body).next_marker == "k9"


def test_submit_body_carries_every_documented_field() -> None:
    body = wire.build_submit(
        JobRequest(
            input_object="a &<b>.jpg",
            output_bucket="b-1",
            output_region="ap-guangzhou",
            output_object="o.webp",
            queue_id="p1",
            process_rule="imageMogr2/rotate/90",
            is_pic_info=True,
            user_data="x",
            job_level=2,
            callback="https://cb.example/x",
            callback_format="JSON",
            callback_type="Url",
        )
    )
    assert body == (
        b"<?xml version='1.0' encoding='utf-8'?>\n<Request><Tag>PicProcess</Tag>"
        b"<Input><Object>a &amp;&lt;b&gt;.jpg</Object></Input><Operation><PicProcess>"
        b"<IsPicInfo>true</IsPicInfo><ProcessRule>imageMogr2/rotate/90</ProcessRule></PicProcess>"
        b"<Output><Region>ap-guangzhou</Region><Bucket>b-1</Bucket><Object>o.webp</Object></Output>"
        b"<UserData>x</UserData><JobLevel>2</JobLevel></Operation><QueueId>p1</QueueId>"
        b"<CallBack>https://cb.example/x</CallBack><CallBackFormat>JSON</CallBackFormat>"
        b"<CallBackType>Url</CallBackType></Request>"
    )


def test_template_id_replaces_the_pic_process_block() -> None:
    body = wire.build_submit(JobRequest("a", "b", "r", "o", template_id="t1"))
    assert b"<TemplateId>t1</TemplateId>" in body
    assert b"PicProcess>" not in body.replace(b"<Tag>PicProcess</Tag>", b"")


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><Response>&x;</Response>',
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><Response><JobsDetail><JobId>&c;</JobId></JobsDetail></Response>',
    ],
    ids=["external-entity", "billion-laughs"],
)
def test_entity_laden_documents_are_refused_without_expansion(body: bytes) -> None:
    with pytest.raises(ResponseError, match="DOCTYPE"):
        wire.parse_describe(body)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty response body"),
        (b"<Response><JobsDetail><JobId>c1</Job", "malformed XML"),
        (b"<html><body>502 Bad Gateway</body></html>", "no JobsDetail"),
        (
            b"<Response><JobsDetail><State>Submitted</State></JobsDetail></Response>",
            "without a JobId",
        ),
    ],
    ids=["empty", "truncated", "html", "missing-jobid"],
)
def test_unusable_success_bodies_are_outcome_unknown(body: bytes, message: str) -> None:
    with pytest.raises(ResponseError, match=message) as info:
        wire.parse_submit(body)
    assert info.value.disposition is Disposition.UNKNOWN


def test_ci_error_body_without_resource_is_parsed() -> None:
    body = b"<Error><Code>InvalidArgument</Code><Message>bad JobLevel</Message><RequestId>NjJm</RequestId><TraceId>t</TraceId></Error>"
    err = wire.parse_error(400, body, "application/xml")
    assert (err.status, err.code, err.error_message, err.request_id) == (
        400,
        "InvalidArgument",
        "bad JobLevel",
        "NjJm",
    )
    assert str(err) == "HTTP 400 InvalidArgument: bad JobLevel (RequestId NjJm)"
    assert err.disposition is Disposition.PERMANENT


def test_json_error_body_is_parsed() -> None:
    err = wire.parse_error(
        403, b'{"code": "AccessDenied", "message": "no", "request_id": "r1"}', "application/json"
    )
    assert (err.code, err.error_message, err.request_id) == ("AccessDenied", "no", "r1")


def test_html_error_page_from_a_proxy_keeps_status_and_says_what_it_was() -> None:
    err = wire.parse_error(
        502, b"<html><head><title>502</title></head><body><hr/>nginx</body></html>", "text/html"
    )
    assert (err.code, err.error_message) == ("HTTP502", "unexpected <html> error body")
    err = wire.parse_error(503, b"Service Unavailable <b>", "text/html; charset=utf-8")
    assert (err.code, err.error_message) == ("HTTP503", "non-XML error body (text/html)")


@pytest.mark.parametrize(
    ("status", "code", "disposition"),
    [
        (429, "SlowDown", Disposition.RETRYABLE),
        (503, "ServiceUnavailable", Disposition.RETRYABLE),
        (503, "SlowDown", Disposition.RETRYABLE),
        (500, "InternalError", Disposition.UNKNOWN),
        (502, "HTTP502", Disposition.UNKNOWN),
        (504, "HTTP504", Disposition.UNKNOWN),
        (400, "InvalidArgument", Disposition.PERMANENT),
        (401, "InvalidAuthorization", Disposition.PERMANENT),
        (403, "QueueSaturated", Disposition.RETRYABLE),
        (403, "QueuePaused", Disposition.RETRYABLE),
        (403, "AccessDenied", Disposition.PERMANENT),
        (404, "NoSuchKey", Disposition.PERMANENT),
    ],
)
def test_service_errors_are_classified_by_status_and_code(
    status: int, code: str, disposition: Disposition
) -> None:
    assert (
        wire.parse_error(
            status, f"<Error><Code>{code}</Code></Error>".encode(), "application/xml"
        ).disposition
        is disposition
    )


def test_the_submit_body_carries_callback_no_and_the_tdmq_config() -> None:
    request = JobRequest(
        "a.png", "out", "ap-chongqing", "o/a.png", callback="no", callback_type="TDMQ",
        callback_mq=("gz", "Topic", "jobs"),
    )  # fmt: skip
    body = wire.build_submit(request).decode()
    assert "<CallBack>no</CallBack>" in body
    assert (
        "<CallBackMqConfig><MqRegion>gz</MqRegion><MqMode>Topic</MqMode><MqName>jobs</MqName>"
        "</CallBackMqConfig>"
    ) in body


@pytest.mark.parametrize("size", ["²", "9" * 5000, " 12 ", "x"])
def test_a_listing_entrys_size_reads_the_same_in_cos_spelling_and_any_other(size: str) -> None:
    entry = (
        "<Contents><Key>k</Key><Size>{}</Size><ETag>e</ETag><LastModified>t</LastModified>"
        "<StorageClass>STANDARD</StorageClass></Contents>"
    )
    cos = f"<ListBucketResult>{entry.format(size)}</ListBucketResult>".encode()
    other = cos.replace(b"<Size>", b"<size>").replace(b"</Size>", b"</size>")
    expected = 12 if size == " 12 " else None
    assert wire.parse_object_page(cos).entries[0].size == expected
    assert wire.parse_object_page(other).entries[0].size == expected
