"""The store serves the bucket folder as it is now: files added, changed or removed by hand while
the emulator runs are seen by HEAD, GET, listings and jobs at once, without a rescan."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from orchestrator.emulator.server import RunningEmulator
from orchestrator.emulator.store import Bucket
from tests.emulator.support import BUCKET, COS_HOST, Client, image_bytes, submit_ok

# ---------------------------------------------------------------------- over HTTP


async def _listed(client: Client, prefix: str = "", **params: str) -> list[str]:
    reply = await client.request("GET", "/", params={"prefix": prefix, **params}, host=COS_HOST)
    assert reply.status == 200, reply.body
    return reply.texts("Contents/Key") + reply.texts("CommonPrefixes/Prefix")


async def _job_state(client: Client, job_id: str) -> tuple[str | None, str | None]:
    reply = await client.request("GET", f"/pic_jobs/{job_id}")
    return reply.text("JobsDetail/State"), reply.text("JobsDetail/Code")


async def test_files_added_by_hand_are_seen_by_head_get_listing_and_jobs(
    client: Client, data_dir: Path
) -> None:
    assert await _listed(client, "photos/") == ["photos/cat.jpg", "photos/dog.png"]
    folder = data_dir / BUCKET / "photos"
    (folder / "new.jpg").write_bytes(image_bytes())
    (folder / "later").mkdir()
    (folder / "later" / "deep.jpg").write_bytes(b"deep")

    head = await client.request("HEAD", "/photos/new.jpg", host=COS_HOST)
    get = await client.request("GET", "/photos/later/deep.jpg", host=COS_HOST)
    listed = await _listed(client, "photos/")
    rolled = await _listed(client, "photos/", delimiter="/")
    job_id = await submit_ok(client, input_object="photos/new.jpg", output_object="out/new.jpg")

    assert head.status == 200
    assert (get.status, get.body) == (200, b"deep")
    assert listed == ["photos/cat.jpg", "photos/dog.png", "photos/later/deep.jpg", "photos/new.jpg"]
    assert rolled == ["photos/cat.jpg", "photos/dog.png", "photos/new.jpg", "photos/later/"]
    assert await _job_state(client, job_id) == ("Success", "Success")


async def test_a_file_added_to_a_folder_never_listed_before_is_listed(
    client: Client, data_dir: Path
) -> None:
    assert await _listed(client) == ["photos/cat.jpg", "photos/dog.png"]
    (data_dir / BUCKET / "fresh" / "a" / "b").mkdir(parents=True)
    (data_dir / BUCKET / "fresh" / "a" / "b" / "c.jpg").write_bytes(b"c")

    assert await _listed(client, "fresh/") == ["fresh/a/b/c.jpg"]


async def test_files_and_folders_removed_by_hand_disappear_from_head_get_listing_and_jobs(
    client: Client, data_dir: Path
) -> None:
    bucket = data_dir / BUCKET
    (bucket / "gone" / "sub").mkdir(parents=True)
    (bucket / "gone" / "sub" / "x.jpg").write_bytes(b"x")
    put = await client.request("PUT", "/gone/written.jpg", body=b"w", host=COS_HOST)
    assert put.status == 200
    assert await _listed(client, "gone/") == ["gone/sub/x.jpg", "gone/written.jpg"]

    (bucket / "photos" / "cat.jpg").unlink()
    shutil.rmtree(bucket / "gone")

    head = await client.request("HEAD", "/photos/cat.jpg", host=COS_HOST)
    get = await client.request("GET", "/gone/written.jpg", host=COS_HOST)
    job_id = await submit_ok(client, input_object="photos/cat.jpg")
    assert (head.status, get.status) == (404, 404)
    assert await _listed(client) == ["photos/dog.png"]
    assert await _job_state(client, job_id) == ("Failed", "ResourceNotFound")


async def test_a_file_rewritten_by_hand_is_served_with_its_new_size_and_etag(
    client: Client, data_dir: Path
) -> None:
    before = await client.request("HEAD", "/photos/cat.jpg", host=COS_HOST)
    path = data_dir / BUCKET / "photos" / "cat.jpg"
    path.write_bytes(b"now a short file")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))

    after = await client.request("HEAD", "/photos/cat.jpg", host=COS_HOST)
    assert after.headers["Content-Length"] == str(len(b"now a short file"))
    assert after.headers["ETag"] == '"0f07be791ba788a611f48bfeefb40c71"'
    assert after.headers["ETag"] != before.headers["ETag"]


async def test_pages_see_files_added_between_them(client: Client, data_dir: Path) -> None:
    first = await client.request(
        "GET", "/", params={"prefix": "photos/", "max-keys": "1"}, host=COS_HOST
    )
    assert first.texts("Contents/Key") == ["photos/cat.jpg"]
    (data_dir / BUCKET / "photos" / "cow.jpg").write_bytes(b"moo")

    second = await client.request(
        "GET",
        "/",
        params={"prefix": "photos/", "max-keys": "1", "marker": "photos/cat.jpg"},
        host=COS_HOST,
    )
    assert second.texts("Contents/Key") == ["photos/cow.jpg"]
    assert second.text("IsTruncated") == "true"


async def test_a_bucket_folder_made_by_hand_is_served(emu: RunningEmulator, data_dir: Path) -> None:
    (data_dir / "other-1250000000" / "k").mkdir(parents=True)
    (data_dir / "other-1250000000" / "k" / "v.txt").write_bytes(b"v")

    meta = emu.backend.head_object("other-1250000000", "k/v.txt")
    assert meta.size == 1


# ---------------------------------------------------------------------- the store itself


def _keys(bucket: Bucket, prefix: str = "") -> list[str]:
    return [meta.key for meta in bucket.list(prefix, "", "", 1000).contents]


def test_an_object_written_by_the_emulator_then_removed_by_hand_leaves_the_listing(
    tmp_path: Path,
) -> None:
    bucket = Bucket("b-1250000000", tmp_path / "b-1250000000")
    assert _keys(bucket) == []
    bucket.write("new/folder/a.jpg", b"a")
    bucket.write("top.jpg", b"t")
    (bucket.root / "new" / "folder" / "a.jpg").unlink()
    (bucket.root / "top.jpg").unlink()

    assert _keys(bucket) == []


def test_hundreds_of_files_added_at_once_are_listed_in_order(tmp_path: Path) -> None:
    bucket = Bucket("b-1250000000", tmp_path / "b-1250000000")
    bucket.write("m/0500.jpg", b"")
    names = [f"{i:04d}.jpg" for i in range(1000)]
    for name in reversed(names):
        (bucket.root / "m" / name).write_bytes(b"")

    assert _keys(bucket, "m/") == [f"m/{name}" for name in names]
    assert bucket.all_keys() == [f"m/{name}" for name in names]


def test_a_folder_whose_time_has_not_changed_is_not_read_again(tmp_path: Path) -> None:
    root = tmp_path / "b-1250000000"
    (root / "still").mkdir(parents=True)
    (root / "still" / "a.jpg").write_bytes(b"")
    long_ago = 1_000_000_000 * 10**9
    os.utime(root / "still", ns=(long_ago, long_ago))
    bucket = Bucket("b-1250000000", root)
    assert _keys(bucket, "still/") == ["still/a.jpg"]

    # Slipped in with the folder's time put back: only the folder's time says what to read.
    (root / "still" / "b.jpg").write_bytes(b"")
    os.utime(root / "still", ns=(long_ago, long_ago))
    assert _keys(bucket, "still/") == ["still/a.jpg"]

    os.utime(root / "still", ns=(long_ago, long_ago + 10**9))
    assert _keys(bucket, "still/") == ["still/a.jpg", "still/b.jpg"]
