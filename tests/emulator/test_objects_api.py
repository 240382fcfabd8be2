"""COS object calls over HTTP: upload, download, HEAD and List Objects v1."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from tests.emulator.support import BUCKET, COS_HOST, REGION, Client, image_bytes, submit_ok

AWKWARD_KEYS = [
    "q&a/<tag> \"quoted\" 'single'.jpg",
    "sp ace/plus+percent%25hash#question?.jpg",
    "中文/腾讯云.jpg",
    "dots/../odd.jpg",
]


async def test_an_uploaded_object_can_be_downloaded_and_headed(client: Client) -> None:
    put = await client.request("PUT", "/up/a.jpg", body=b"abc", host=COS_HOST)
    get = await client.request("GET", "/up/a.jpg", host=COS_HOST)
    head = await client.request("HEAD", "/up/a.jpg", host=COS_HOST)

    assert put.status == 200
    assert put.headers["ETag"] == '"900150983cd24fb0d6963f7d28e17f72"'
    assert put.headers["Server"] == "tencent-cos"
    assert put.headers["x-cos-request-id"]
    assert (get.status, get.body) == (200, b"abc")
    assert get.headers["ETag"] == put.headers["ETag"]
    assert get.headers["Content-Type"] == "image/jpeg"
    assert head.status == 200
    assert head.headers["Content-Length"] == "3"


async def test_a_missing_object_is_404_no_such_key_with_a_cos_error_body(client: Client) -> None:
    reply = await client.request("GET", "/nothing/here.jpg", host=COS_HOST)

    assert reply.status == 404
    error = reply.xml()
    assert [child.tag for child in error] == ["Code", "Message", "Resource", "RequestId", "TraceId"]
    assert error.findtext("Code") == "NoSuchKey"
    assert error.findtext("Resource")
    assert reply.headers["x-cos-trace-id"]
    assert (await client.request("HEAD", "/nothing/here.jpg", host=COS_HOST)).status == 404


async def test_an_unknown_bucket_is_404_no_such_bucket(client: Client) -> None:
    host = f"other-1250000000.cos.{REGION}.myqcloud.com"

    reply = await client.request("GET", "/", host=host)

    assert reply.status == 404
    assert reply.text("Code") == "NoSuchBucket"


async def test_an_invalid_key_is_refused_on_upload(client: Client) -> None:
    leading = await client.request("PUT", "//lead.jpg", body=b"x", host=COS_HOST)
    long = await client.request("PUT", "/" + "k" * 851, body=b"x", host=COS_HOST)

    assert (leading.status, leading.text("Code")) == (400, "InvalidURI")
    assert (long.status, long.text("Code")) == (400, "KeyTooLong")


async def test_listing_shows_contents_with_every_documented_field(client: Client) -> None:
    reply = await client.request("GET", "/", params={"prefix": "photos/"}, host=COS_HOST)

    assert reply.status == 200
    assert reply.headers["x-cos-bucket-region"] == REGION
    root = reply.xml()
    assert root.tag == "ListBucketResult"
    assert root.findtext("Name") == BUCKET
    assert root.findtext("Prefix") == "photos/"
    assert root.findtext("MaxKeys") == "1000"
    assert root.findtext("IsTruncated") == "false"
    assert root.find("NextMarker") is None
    assert root.find("EncodingType") is None
    assert root.find("Delimiter") is None
    contents = root.findall("Contents")
    assert [c.findtext("Key") for c in contents] == ["photos/cat.jpg", "photos/dog.png"]
    first = contents[0]
    assert [child.tag for child in first] == [
        "Key", "LastModified", "ETag", "Size", "Owner", "StorageClass",
    ]  # fmt: skip
    assert first.findtext("ETag", "").startswith('"')
    assert first.findtext("LastModified", "").endswith(".000Z")
    assert first.findtext("Owner/ID") == "1250000000"
    assert first.findtext("StorageClass") == "STANDARD"


async def test_listing_pages_with_next_marker_and_rolls_up_common_prefixes(
    client: Client,
) -> None:
    for key in ["a/1", "a/2", "b", "c/1", "d"]:
        await client.request("PUT", f"/{key}", body=b"", host=COS_HOST)

    first = await client.request(
        "GET", "/", params={"delimiter": "/", "max-keys": "3"}, host=COS_HOST
    )
    second = await client.request(
        "GET",
        "/",
        params={"delimiter": "/", "max-keys": "3", "marker": first.text("NextMarker") or ""},
        host=COS_HOST,
    )

    assert first.text("IsTruncated") == "true"
    assert first.texts("CommonPrefixes/Prefix") == ["a/", "c/"]
    assert first.texts("Contents/Key") == ["b"]
    assert first.text("NextMarker") == "c/"
    assert second.text("IsTruncated") == "false"
    assert second.xml().find("NextMarker") is None
    assert second.texts("CommonPrefixes/Prefix") == ["photos/"]
    assert second.texts("Contents/Key") == ["d"]


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"delimiter": "//"}, 400, "InvalidDelimiter"),
        ({"encoding-type": "base64"}, 400, "InvalidArgument"),
        ({"max-keys": "lots"}, 400, "InvalidArgument"),
        ({"max-keys": "-1"}, 400, "InvalidArgument"),
    ],
)
async def test_bad_listing_parameters_are_refused(
    client: Client, params: dict[str, str], status: int, code: str
) -> None:
    reply = await client.request("GET", "/", params=params, host=COS_HOST)

    assert (reply.status, reply.text("Code")) == (status, code)


async def test_max_keys_above_1000_is_clamped(client: Client) -> None:
    reply = await client.request("GET", "/", params={"max-keys": "5000"}, host=COS_HOST)

    assert reply.text("MaxKeys") == "1000"


async def test_awkward_keys_round_trip_through_upload_url_listing_download_and_processing(
    client: Client,
) -> None:
    data = image_bytes()
    for key in AWKWARD_KEYS:
        put = await client.request("PUT", f"/{key}", body=data, host=COS_HOST)
        assert put.status == 200, (key, put.body)

    params = {"encoding-type": "url", "prefix": "", "delimiter": "", "marker": ""}
    listing = await client.request("GET", "/", params=params, host=COS_HOST)
    encoded = listing.texts("Contents/Key")
    assert listing.text("EncodingType") == "url"
    assert all(ch not in key for key in encoded for ch in " &<>\"'#?+中")
    assert set(AWKWARD_KEYS) <= {unquote(key) for key in encoded}

    for key in AWKWARD_KEYS:
        get = await client.request("GET", f"/{key}", host=COS_HOST)
        assert (get.status, get.body) == (200, data), key
        job_id = await submit_ok(client, input_object=key, output_object=f"processed/{key}")
        detail = await client.request("GET", f"/pic_jobs/{job_id}")
        assert detail.text("JobsDetail/State") == "Success", detail.body
        assert detail.text("JobsDetail/Input/Object") == key
        assert detail.text("JobsDetail/Operation/PicProcessResult/ObjectName") == (
            f"processed/{key}"
        )
        out = await client.request("GET", f"/processed/{key}", host=COS_HOST)
        assert out.status == 200, key


async def test_url_encoding_escapes_prefix_marker_and_common_prefixes(client: Client) -> None:
    await client.request("PUT", "/dir one/x y.jpg", body=b"", host=COS_HOST)
    await client.request("PUT", "/dir one/sub dir/z.jpg", body=b"", host=COS_HOST)

    params = {"encoding-type": "url", "prefix": "dir one/", "delimiter": "/", "max-keys": "1"}
    reply = await client.request("GET", "/", params=params, host=COS_HOST)

    assert reply.text("Prefix") == "dir%20one/"
    assert reply.texts("CommonPrefixes/Prefix") == ["dir%20one/sub%20dir/"]
    assert reply.text("NextMarker") == "dir%20one/sub%20dir/"
    assert reply.text("Delimiter") == "/"
