"""Bucket folders: key to path mapping, the fallback for awkward keys, and v1 listing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from orchestrator.emulator.errors import InvalidURI, KeyTooLong
from orchestrator.emulator.store import RESERVED_DIR, Bucket, cos_time

AWKWARD = [
    "a&b<c>d\"e'f.jpg",
    "with space/and+plus%25#hash?q.jpg",
    "中文/腾讯云.png",
    "x" * 300 + ".jpg",
    "dots/./here.jpg",
    "dots/../up.jpg",
    "trailing/",
    "double//slash.jpg",
    f"{RESERVED_DIR}/sneaky.jpg",
]


@pytest.fixture
def bucket(tmp_path: Path) -> Bucket:
    return Bucket("b-1250000000", tmp_path / "b-1250000000")


def test_a_plain_key_is_a_file_at_the_same_relative_path(bucket: Bucket) -> None:
    meta = bucket.write("photos/2024/cat.jpg", b"meow")

    assert meta.path == bucket.root / "photos" / "2024" / "cat.jpg"
    assert meta.path.read_bytes() == b"meow"
    assert meta.etag == '"4a4be40c96ac6314e91d93f38043a634"'


@pytest.mark.parametrize("key", AWKWARD)
def test_awkward_keys_round_trip_exactly_and_survive_a_rescan(bucket: Bucket, key: str) -> None:
    bucket.write(key, key.encode())

    assert bucket.read(key) == key.encode()
    fresh = Bucket(bucket.name, bucket.root)
    assert fresh.all_keys() == [key]
    assert fresh.read(key) == key.encode()
    for path in bucket.root.rglob("*"):
        assert bucket.root in path.resolve().parents or path.resolve() == bucket.root


def test_a_key_and_a_key_below_it_can_both_exist(bucket: Bucket) -> None:
    bucket.write("a", b"file")
    bucket.write("a/b", b"below")
    bucket.write("c/d", b"below")
    bucket.write("c", b"file")

    fresh = Bucket(bucket.name, bucket.root)
    assert {key: fresh.read(key) for key in fresh.all_keys()} == {
        "a": b"file", "a/b": b"below", "c": b"file", "c/d": b"below",
    }  # fmt: skip


def test_a_write_after_its_folders_were_removed_by_hand_recreates_them(
    bucket: Bucket,
) -> None:
    bucket.write("deep/er/a.jpg", b"one")
    shutil.rmtree(bucket.root / "deep")
    shutil.rmtree(bucket.root / RESERVED_DIR)
    meta = bucket.write("deep/er/b.jpg", b"two")
    assert (bucket.root / "deep" / "er" / "b.jpg").read_bytes() == b"two"
    assert meta.size == 3


def test_a_file_made_by_hand_where_a_folder_was_is_not_overwritten(bucket: Bucket) -> None:
    bucket.write("d/a.jpg", b"one")
    shutil.rmtree(bucket.root / "d")
    (bucket.root / "d").write_bytes(b"a file now")
    bucket.scan()
    bucket.write("d/b.jpg", b"two")
    assert (bucket.root / "d").read_bytes() == b"a file now"
    assert bucket.read("d/b.jpg") == b"two"


@pytest.mark.parametrize(
    ("key", "error"),
    [("", InvalidURI), ("/lead.jpg", InvalidURI), ("x" * 851, KeyTooLong), ("a\x1bb", InvalidURI)],
)
def test_invalid_keys_are_refused(bucket: Bucket, key: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        bucket.write(key, b"")


def test_files_dropped_into_the_folder_appear_at_the_next_scan(bucket: Bucket) -> None:
    (bucket.root / "hand").mkdir()
    (bucket.root / "hand" / "made.jpg").write_bytes(b"12345")

    bucket.scan()

    meta = bucket.get("hand/made.jpg")
    assert meta is not None and meta.size == 5


def test_keys_are_listed_in_utf8_byte_order(bucket: Bucket) -> None:
    for key in ["b", "a", "\u00e9", "Z", "\U0001f600", "a/b", "a-b"]:
        bucket.write(key, b"")

    listing = bucket.list("", "", "", 1000)

    assert [m.key for m in listing.contents] == sorted(
        ["b", "a", "\u00e9", "Z", "\U0001f600", "a/b", "a-b"], key=str.encode
    )


def test_listing_rolls_up_common_prefixes_and_pages_with_next_marker(bucket: Bucket) -> None:
    for key in ["a/1", "a/2", "b", "c/1", "c/2/x", "d"]:
        bucket.write(key, b"")

    everything = bucket.list("", "/", "", 1000)
    assert everything.common_prefixes == ["a/", "c/"]
    assert [m.key for m in everything.contents] == ["b", "d"]
    assert not everything.truncated and everything.next_marker == ""

    pages: list[list[str]] = []
    marker = ""
    while True:
        page = bucket.list("", "/", marker, 2)
        pages.append(page.common_prefixes + [m.key for m in page.contents])
        if not page.truncated:
            break
        marker = page.next_marker
    assert pages == [["a/", "b"], ["c/", "d"]]

    under_c = bucket.list("c/", "/", "", 1000)
    assert under_c.common_prefixes == ["c/2/"]
    assert [m.key for m in under_c.contents] == ["c/1"]


def test_max_keys_zero_lists_nothing_and_is_not_truncated(bucket: Bucket) -> None:
    bucket.write("a", b"")

    listing = bucket.list("", "", "", 0)

    assert (listing.contents, listing.common_prefixes, listing.truncated) == ([], [], False)


def test_last_modified_has_cos_millisecond_format() -> None:
    assert cos_time(1607571450.75) == "2020-12-10T03:37:30.000Z"


@pytest.mark.parametrize("seconds", [0, 1_600_000_000, 1_600_000_000.9, 4_102_444_800])
def test_cos_time_is_whole_seconds_however_often_it_is_asked(seconds: float) -> None:
    first = cos_time(seconds)
    assert first == cos_time(seconds) == cos_time(int(seconds))
    assert first.endswith(".000Z") and len(first) == 24
