"""A listing page read for its keys only: (key, ETag, time) rows, no object per entry.

skip_existing reads a million listed outputs and needs of each only its key, ETag and time.
Reading them as columns (XPath in C) and zipping them into tuples costs a fifth of building an
`ObjectEntry` and then an `ObjectRef` per key. A page of any other shape than COS's own
spelling (another case, a namespace, an entry without one of the three) is read by
`wire.parse_object_page`, entry by entry, and converted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast
from urllib.parse import unquote

from lxml import etree

from orchestrator.cloud import wire
from orchestrator.cloud.models import ObjectPage

__all__ = ["KeyPage", "KeyRow", "iso_time", "parse_key_page"]

# (key, ETag without its quotes, Last-Modified as ISO 8601 UTC in whole seconds)
KeyRow = tuple[str, str | None, str | None]


@dataclass(frozen=True, slots=True)
class KeyPage:
    rows: list[KeyRow]  # folder markers (keys ending in '/') left out
    last_key: str | None  # the page's last key, folder markers included
    is_truncated: bool
    next_marker: str | None


_CONTENTS = etree.XPath("count(Contents)")
# The page's other children, a dozen: none may be an entry spelled another way.
_OTHERS = etree.XPath("*[not(self::Contents)]")
_KEYS, _ETAGS, _TIMES = (
    etree.XPath(f"Contents/{name}/text()", smart_strings=False)
    for name in ("Key", "ETag", "LastModified")
)


def _field(name: str) -> etree.XPath:
    """The text of the root's first child called `name` in any case or namespace."""
    upper, lower = name.upper(), name.lower()
    return etree.XPath(f"string(*[translate(local-name(), '{upper}', '{lower}') = '{lower}'][1])")


_ENCODED, _TRUNCATED, _NEXT_MARKER = map(_field, ("EncodingType", "IsTruncated", "NextMarker"))


def iso_time(value: str | None) -> str | None:
    """COS's 2020-12-10T03:37:30.000Z as the ledger keeps times: whole seconds, UTC."""
    if not value:
        return None
    return value.split(".")[0].rstrip("Z") + "Z"


def parse_key_page(body: bytes) -> KeyPage:
    root = wire.parse_document(body)
    count = cast(float, _CONTENTS(root))
    columns = [cast(list[str], xpath(root)) for xpath in (_KEYS, _ETAGS, _TIMES)]
    others = cast(list[wire.Element], _OTHERS(root))
    if any(len(c) != count for c in columns) or any(_is_entry(el) for el in others):
        return _from_object_page(wire.parse_object_page(body))
    keys, etags, times = columns
    next_marker = cast(str, _NEXT_MARKER(root)) or None
    if cast(str, _ENCODED(root)).strip().lower() == "url":
        keys = [unquote(key) if "%" in key else key for key in keys]
        next_marker = next_marker and unquote(next_marker)
    truncated = cast(str, _TRUNCATED(root)).strip().lower() == "true"
    if truncated and not next_marker and keys:
        next_marker = keys[-1]  # S3 semantics when NextMarker is left out
    seen: dict[str, str | None] = {}  # a page's times are few: each converted once
    for when in times:
        if when not in seen:
            seen[when] = iso_time(when.strip())
    rows = [
        (key, etag.strip().strip('"') or None, seen[when])
        for key, etag, when in zip(keys, etags, times, strict=True)
        if not key.endswith("/")
    ]
    return KeyPage(rows, keys[-1] if keys else None, truncated, next_marker)


def _is_entry(el: wire.Element) -> bool:
    tag = el.tag
    return isinstance(tag, str) and tag.rsplit("}", 1)[-1].lower() == "contents"


def _from_object_page(page: ObjectPage) -> KeyPage:
    rows = [
        (entry.key, entry.etag, iso_time(entry.last_modified))
        for entry in page.entries
        if not entry.key.endswith("/")
    ]
    last = page.entries[-1].key if page.entries else None
    return KeyPage(rows, last, page.is_truncated, page.next_marker)
