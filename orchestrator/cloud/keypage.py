"""A listing page read for its keys only: (key, ETag, time) rows, no object per entry.

skip_existing reads a million listed outputs and needs of each only its key, ETag and time.
A page as COS's servers write it (entries in their fixed shape, no references in keys, no
comments, CDATA or namespaces) has its entries read by a pattern over the text, and only its
frame (the root and a dozen fields, without the entries) by the XML parser: building the tree
of a thousand entries cost twice the rest of the plan's work per output. A page of any other
shape is read by the parser whole: as columns (XPath in C), or, when even that does not fit
(another case, a namespace, an entry without one of the three), by `wire.parse_object_page`,
entry by entry, and converted.
"""

from __future__ import annotations

import re
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


# An entry as COS writes it starts with its Key, LastModified and ETag, blanks allowed between.
_ENTRY = re.compile(
    r"<Contents>\s*<Key>([^<]*)</Key>\s*<LastModified>([^<]*)</LastModified>\s*"
    r"<ETag>([^<]*)</ETag>"
)
_DECLARATION = re.compile(
    r"<\?xml\s+version=([\"'])1\.[0-9]\1(?:\s+encoding=([\"'])[Uu][Tt][Ff]-?8\2)?"
    r"(?:\s+standalone=([\"'])(?:yes|no)\3)?\s*\?>"
)


def parse_key_page(body: bytes) -> KeyPage:
    read = _read_entries(body)
    if read is not None:
        fields, keys, etags, times = read
    else:
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


def _read_entries(
    body: bytes,
) -> tuple[dict[str, str], list[str], list[str], list[str]] | None:
    """(fields, keys, ETags, times) of a page in COS's own shape, its entries read by pattern
    and its frame by the parser; None for a page of any other shape (or no entries)."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return None
    first, last = text.find("<Contents>"), text.rfind("</Contents>")
    # No comment, CDATA or DOCTYPE ('!' alone is found far faster), no line ends to normalise.
    if first < 0 or ("!" in text and "<!" in text) or "\r" in text:
        return None
    end = last + len("</Contents>")
    entries = text[first:end]
    found = _ENTRY.findall(entries)
    # The entries sit side by side, each opened by a plain <Contents> and starting with the
    # three: each row is one entry's, and nothing else lies between them.
    count = len(found)
    if (
        not count
        or entries.count("<Contents>") != count
        or entries.count("</Contents><Contents>") != count - 1
        or entries.count("Contents>") != 2 * count
    ):
        return None
    keys, times, etags = (list(column) for column in zip(*found, strict=True))
    if "&" in "".join(keys) or "&" in "".join(times):
        return None  # a reference in a key: the parser reads it
    joined = "".join(etags)
    if "&" in joined:
        if joined.count("&") != joined.count("&quot;"):
            return None
        etags = [etag.replace("&quot;", '"') for etag in etags]  # COS's own spelling
    frame = text[:first] + text[end:]
    declared = _DECLARATION.match(frame)
    if "xmlns" in frame or "<?" in (frame[declared.end() :] if declared else frame):
        return None  # a namespace, another encoding declared, or a processing instruction
    root = wire.parse_document(frame.encode())
    fields = _fields(cast(list[wire.Element], _OTHERS(root)))
    if "contents" in fields or _CONTENTS(root):
        return None  # an entry spelled another way
    return fields, keys, etags, times


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
