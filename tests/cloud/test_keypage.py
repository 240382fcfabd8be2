"""Listing pages read for their keys only (skip_existing): the same rows as entry by entry."""

from __future__ import annotations

import pytest

from orchestrator.cloud import wire
from orchestrator.cloud.keypage import iso_time, parse_key_page
from orchestrator.exceptions import ResponseError

ENTRY = (
    "<Contents><Key>{key}</Key><LastModified>2020-12-10T03:37:30.000Z</LastModified>"
    "<ETag>&quot;f173&quot;</ETag><Size>37</Size><StorageClass>STANDARD</StorageClass></Contents>"
)


def _page(*keys: str, head: str = "<IsTruncated>true</IsTruncated>", root: str = "") -> bytes:
    entries = "".join(ENTRY.format(key=key) for key in keys)
    return f"<ListBucketResult{root}>{head}{entries}</ListBucketResult>".encode()


def _rows_entry_by_entry(body: bytes) -> list[tuple[str, str | None, str | None]]:
    page = wire.parse_object_page(body)
    return [
        (e.key, e.etag, iso_time(e.last_modified)) for e in page.entries if not e.key.endswith("/")
    ]


def test_a_cos_page_gives_key_etag_and_time_rows_without_its_folder_markers() -> None:
    body = _page(
        "a%2Bb%20%E8%85%BE.jpg",
        "dir%2F",
        "plain.jpg",
        head="<EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>"
        "<NextMarker>plain.jpg</NextMarker>",
    )
    page = parse_key_page(body)
    assert page.rows == [
        ("a+b 腾.jpg", "f173", "2020-12-10T03:37:30Z"),
        ("plain.jpg", "f173", "2020-12-10T03:37:30Z"),
    ]
    assert (page.last_key, page.is_truncated, page.next_marker) == ("plain.jpg", True, "plain.jpg")


def test_a_truncated_page_without_next_marker_continues_after_its_last_key() -> None:
    page = parse_key_page(_page("k1", "k9/"))
    assert (page.last_key, page.next_marker, [row[0] for row in page.rows]) == (
        "k9/",
        "k9/",
        ["k1"],
    )


@pytest.mark.parametrize(
    "body",
    [
        _page("k1", "k2", root=' xmlns="http://doc.s3.amazonaws.com/2006-03-01"'),
        _page("k1").replace(b"<Contents>", b"<contents>").replace(b"</Contents>", b"</contents>"),
        _page("k1", "k2").replace(b"<ETag>&quot;f173&quot;</ETag>", b"", 1),
        _page("k1").replace(b"<Key>", b"<KEY>").replace(b"</Key>", b"</KEY>"),
        _page("k1", "k2").replace(b"&quot;f173&quot;", b" &quot;f173&quot;\n", 1),
        _page("k1", "k2").replace(b"&quot;f173&quot;", b"&quot;&quot;", 1),
        _page("k1", "k2").replace(b"&quot;f173&quot;", b"f173", 1),
        _page("k1", "d/", "k2"),
    ],
    ids=[
        "namespace",
        "lower-case entries",
        "an entry without etag",
        "upper-case key",
        "an etag with blanks",
        "an empty quoted etag",
        "an etag without quotes",
        "a folder marker between keys",
    ],
)
def test_a_page_of_another_shape_gives_the_rows_the_entry_by_entry_reader_gives(
    body: bytes,
) -> None:
    assert parse_key_page(body).rows == _rows_entry_by_entry(body)


def test_a_page_carrying_a_doctype_is_refused() -> None:
    body = b'<!DOCTYPE x [<!ENTITY e "boom">]>' + _page("k1")
    with pytest.raises(ResponseError):
        parse_key_page(body)
