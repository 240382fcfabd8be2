"""Listing pages read for their keys only (skip_existing): the same rows as entry by entry."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

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


def test_a_page_with_a_comment_among_its_entries_is_read_by_the_parser() -> None:
    body = _page("k1", "k2").replace(b"</Contents><Contents>", b"</Contents><!-- x --><Contents>")
    assert [row[0] for row in parse_key_page(body).rows] == ["k1", "k2"]


def test_a_field_between_entries_is_read_and_a_hidden_entry_is_not_lost() -> None:
    between = _page("k1", "k2").replace(
        b"</Contents><Contents>", b"</Contents><NextMarker>k2</NextMarker><Contents>"
    )
    assert parse_key_page(between).next_marker == "k2"
    spaced = _page("k1", "k2").replace(b"<Contents>", b"<Contents >", 1)
    assert [row[0] for row in parse_key_page(spaced).rows] == ["k1", "k2"]


def _cos_page(
    keys: list[str], etags: list[str], *, url: bool, truncated: bool, pretty: bool, declared: bool
) -> bytes:
    """A page written by lxml, as COS spells it (ETag quotes as references) when not `pretty`."""

    root = etree.Element("ListBucketResult")
    etree.SubElement(root, "Name").text = "b-1250000000"
    if url:
        etree.SubElement(root, "EncodingType").text = "url"
    etree.SubElement(root, "IsTruncated").text = "true" if truncated else "false"
    for key, etag in zip(keys, etags, strict=True):
        entry = etree.SubElement(root, "Contents")
        for name, value in (
            ("Key", quote(key, safe="/") if url else key),
            ("LastModified", "2020-12-10T03:37:30.000Z"),
            ("ETag", etag),
            ("Size", "37"),
        ):
            etree.SubElement(entry, name).text = value
        owner = etree.SubElement(entry, "Owner")
        etree.SubElement(owner, "ID").text = "1250000000"
    body: bytes = etree.tostring(
        root, pretty_print=pretty, xml_declaration=declared, encoding="UTF-8"
    )
    return body if pretty else body.replace(b'"', b"&quot;")


# Keys from the characters XML can carry (and a few it must escape), ETags quoted or not.
_KEY_TEXT = st.from_regex(r"[a-z0-9/._ -]{1,12}", fullmatch=True) | st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00")
    | st.sampled_from("&<>\"' !/%\t\n\r"),
    min_size=1,
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(_KEY_TEXT, st.sampled_from(['"f173"', "f173", " f173 ", ""])), max_size=6
    ),
    url=st.booleans(),
    truncated=st.booleans(),
    pretty=st.booleans(),
    declared=st.booleans(),
)
def test_any_page_gives_the_rows_and_markers_the_entry_by_entry_reader_gives(
    rows: list[tuple[str, str]], url: bool, truncated: bool, pretty: bool, declared: bool
) -> None:
    keys = [key for key, _etag in rows]
    body = _cos_page(
        keys, [etag for _key, etag in rows], url=url, truncated=truncated, pretty=pretty,
        declared=declared,
    )  # fmt: skip
    page = parse_key_page(body)
    whole = wire.parse_object_page(body)
    assert page.rows == _rows_entry_by_entry(body)
    assert (page.last_key, page.is_truncated, page.next_marker) == (
        whole.entries[-1].key if whole.entries else None,
        whole.is_truncated,
        whole.next_marker,
    )
