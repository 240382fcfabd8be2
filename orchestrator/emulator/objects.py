"""Objects as COS names and describes them: key and bucket-name rules, metadata, listing pages.

Key rules follow COS's object naming: a key is non-empty UTF-8 of at most 850 bytes, must not
start with `/` and must not contain C0 control characters other than tab, LF and CR (COS refuses CAN,
EM, SUB and ESC; the rest could not be listed in XML). Anything else is
a valid key, including `&<>"'`, spaces, `%`, `+`, `#`, `?` and unicode.

A key maps to the file at the same relative path when it can (`natural_parts`): every
`/`-separated component is non-empty, is not `.` or `..`, holds no NUL and fits in 255 bytes, and
the first component is not the emulator's reserved folder. Where the other keys go is store.py's
business.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.emulator.errors import InvalidURI, KeyTooLong

__all__ = [
    "MAX_KEY_BYTES",
    "RESERVED_DIR",
    "Listing",
    "ObjectMeta",
    "check_key",
    "cos_time",
    "etag_of",
    "natural_parts",
    "valid_bucket_name",
]

MAX_KEY_BYTES = 850
MAX_COMPONENT_BYTES = 255
RESERVED_DIR = ".picjobs-emulator"
# COS refuses CAN, EM, SUB and ESC; the other C0 controls but tab, LF and CR cannot be listed
# in XML, so they are refused too.
_FORBIDDEN_KEY_CHARS = frozenset(chr(c) for c in range(32)) - frozenset("\t\n\r")
_BUCKET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def valid_bucket_name(name: str) -> bool:
    return _BUCKET_NAME.fullmatch(name) is not None


def check_key(key: str) -> None:
    """Raise InvalidURI or KeyTooLong unless `key` is a valid object key."""
    if not key:
        raise InvalidURI("the object key is empty")
    if key.startswith("/"):
        raise InvalidURI("an object key must not start with '/'")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise KeyTooLong()
    if not _FORBIDDEN_KEY_CHARS.isdisjoint(key):
        raise InvalidURI("the object key contains an unsupported control character")


def cos_time(timestamp: float) -> str:
    """COS's LastModified format, whole seconds as COS shows them: 2020-12-10T03:37:30.000Z."""
    return _cos_second(int(timestamp))


@functools.lru_cache(maxsize=4096)
def _cos_second(second: int) -> str:
    # A listing page formats 1,000 of these, most of them of a few seconds: formatting each
    # was a third of the emulator's time per page.
    t = time.gmtime(second)
    return f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d}T{t[3]:02d}:{t[4]:02d}:{t[5]:02d}.000Z"


@dataclass(slots=True)
class ObjectMeta:
    key: str
    path: Path
    size: int
    mtime: float
    _etag: str | None = field(default=None, repr=False)

    @property
    def etag(self) -> str:
        """The quoted MD5 of the content, computed once."""
        if self._etag is None:
            digest = hashlib.md5(usedforsecurity=False)
            with self.path.open("rb") as stream:
                for chunk in iter(lambda: stream.read(1 << 20), b""):
                    digest.update(chunk)
            self._etag = f'"{digest.hexdigest()}"'
        return self._etag

    @property
    def last_modified(self) -> str:
        return cos_time(self.mtime)

    def remember_content(self, data: bytes) -> None:
        """`data` is the file's content: its ETag needs no second read."""
        if self._etag is None:
            self._etag = etag_of(data)


def etag_of(data: bytes) -> str:
    """The ETag COS gives an object of one part: the quoted MD5 of its content."""
    return f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'


@dataclass(frozen=True, slots=True)
class Listing:
    """One page of a v1 listing; `next_marker` is empty unless `truncated`."""

    contents: list[ObjectMeta]
    common_prefixes: list[str]
    truncated: bool
    next_marker: str


def natural_parts(key: str) -> list[str] | None:
    """The path components of the file a key maps to, or None when it cannot have one."""
    parts = key.split("/")
    if parts[0] == RESERVED_DIR:
        return None
    for part in parts:
        if part in ("", ".", "..") or "\0" in part:
            return None
        if len(os.fsencode(part)) > MAX_COMPONENT_BYTES:
            return None
    return parts
