"""Jobs really process images: the output lands at the requested key, changed as asked."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from tests.emulator.support import BUCKET, COS_HOST, REGION, Client, submit_ok


async def test_rotate_90_swaps_width_and_height_of_the_stored_output(
    client: Client, data_dir: Path
) -> None:
    job_id = await submit_ok(client, output_object="rotated/cat.jpg", rule="imageMogr2/rotate/90")
    await client.request("GET", f"/pic_jobs/{job_id}")

    with Image.open(data_dir / BUCKET / "rotated" / "cat.jpg") as out:
        assert out.size == (20, 40)


async def test_format_webp_writes_webp_bytes_at_exactly_the_requested_key(
    client: Client,
) -> None:
    key = "webp/cat.jpg.webp"
    job_id = await submit_ok(client, output_object=key, rule="imageMogr2/format/webp")

    reply = await client.request("GET", f"/pic_jobs/{job_id}")
    out = await client.request("GET", f"/{key}", host=COS_HOST)

    assert reply.text("JobsDetail/Operation/PicProcessResult/ObjectName") == key
    assert out.status == 200
    assert out.body[:4] == b"RIFF" and out.body[8:12] == b"WEBP"
    size = reply.text("JobsDetail/Operation/PicProcessResult/ProcessResult/Size")
    assert size == str(len(out.body))
    listed = await client.request("GET", "/", params={"prefix": "webp/"}, host=COS_HOST)
    assert listed.texts("Contents/Key") == [key]


async def test_a_pipeline_of_styles_applies_every_step(client: Client) -> None:
    rule = "imageMogr2/thumbnail/20x|imageMogr2/rotate/90/format/png"
    job_id = await submit_ok(
        client, input_object="photos/dog.png", output_object="p.png", rule=rule
    )

    await client.request("GET", f"/pic_jobs/{job_id}")
    out = await client.request("GET", "/p.png", host=COS_HOST)

    with Image.open(io.BytesIO(out.body)) as image:
        assert image.format == "PNG"
        assert image.size == (33, 20)  # 30x50 -> 20x33 -> rotated


async def test_the_output_may_go_to_another_bucket_folder(client: Client, data_dir: Path) -> None:
    job_id = await submit_ok(client, output_bucket="results-1250000000", output_object="cat.jpg")

    reply = await client.request("GET", f"/pic_jobs/{job_id}")
    other = f"results-1250000000.cos.{REGION}.myqcloud.com"
    listed = await client.request("GET", "/", host=other)

    assert reply.text("JobsDetail/State") == "Success"
    assert (data_dir / "results-1250000000" / "cat.jpg").is_file()
    assert listed.texts("Contents/Key") == ["cat.jpg"]
