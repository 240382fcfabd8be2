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
_TEXT = etree.XPath("string()")
_KEYS, _ETAGS, _TIMES = (
    etree.XPath(f"Contents/{name}/text()", smart_strings=False)
    for name in ("Key", "ETag", "LastModified")
)


def iso_time(value: str | None) -> str | None:
    """COS's 2020-12-10T03:37:30.000Z as the ledger keeps times: whole seconds, UTC."""
    if not value:
        return None
    return value.split(".")[0].rstrip("Z") + "Z"


def parse_key_page(body: bytes) -> KeyPage:
    root = wire.parse_document(body)
    count = cast(float, _CONTENTS(root))
    columns = [cast(list[str], xpath(root)) for xpath in (_KEYS, _ETAGS, _TIMES)]
    fields = _fields(cast(list[wire.Element], _OTHERS(root)))
    if any(len(c) != count for c in columns) or "contents" in fields:
        return _from_object_page(wire.parse_object_page(body))
    keys, etags, times = columns
    next_marker = fields.get("nextmarker") or None
    joined = "\n".join(keys) + "\n"  # to look for a '%' or a folder marker in C
    if fields.get("encodingtype", "").strip().lower() == "url":
        if "%" in joined:
            keys = [unquote(key) if "%" in key else key for key in keys]
            joined = "\n".join(keys) + "\n"
        next_marker = next_marker and unquote(next_marker)
    truncated = fields.get("istruncated", "").strip().lower() == "true"
    if truncated and not next_marker and keys:
        next_marker = keys[-1]  # S3 semantics when NextMarker is left out
    # A page's times are few: each converted once, and every row's looked up in C.
    converted = {when: iso_time(when.strip()) for when in set(times)}
    rows = list(zip(keys, _unquoted(etags), map(converted.__getitem__, times), strict=True))
    if "/\n" in joined:
        rows = [row for row in rows if not row[0].endswith("/")]
    return KeyPage(rows, keys[-1] if keys else None, truncated, next_marker)


def _unquoted(etags: list[str]) -> list[str | None]:
    """Each ETag stripped of blanks and quotes, empty as None: on one joined string when every
    one is COS's plain quoted hex (a Python step per row cost as much as reading the XML)."""
    joined = "\n".join(etags)
    if (
        joined.startswith('"')
        and joined.endswith('"')
        and joined.count('"') == 2 * len(etags)
        and joined.count('"\n"') == len(etags) - 1
        and joined.count("\n") == len(etags) - 1
        and not any(blank in joined for blank in " \t\r")
        and '""' not in joined
    ):
        return cast(list[str | None], joined.replace('"', "").split("\n"))
    return [etag.strip().strip('"') or None for etag in etags]


def _fields(others: list[wire.Element]) -> dict[str, str]:
    """The text of each of the page's other children by its name in lower case, without its
    namespace (the first of a name): in any case or namespace, as COS's clients read them.
    A dozen elements, where an XPath over every child cost a fifth of reading the page."""
    fields: dict[str, str] = {}
    for el in others:
        tag = el.tag
        if isinstance(tag, str):
            fields.setdefault(tag.rsplit("}", 1)[-1].lower(), cast(str, _TEXT(el)))
    return fields


def _from_object_page(page: ObjectPage) -> KeyPage:
    rows = [
        (entry.key, entry.etag, iso_time(entry.last_modified))
        for entry in page.entries
        if not entry.key.endswith("/")
    ]
    last = page.entries[-1].key if page.entries else None
    return KeyPage(rows, last, page.is_truncated, page.next_marker)
