"""Bytes that should be UTF-8 text: the checks the manifest and the CSV reader share.

Each reader words its own one-line error (the file kinds differ in what helps the user); what
is checked, and where the problem is, is decided here once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = ["UTF8_BOM", "NotText", "decode_utf8", "foreign_encoding", "opened"]

UTF8_BOM = b"\xef\xbb\xbf"
# UTF-32 first: its little-endian mark begins with UTF-16's.
_FOREIGN_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


@contextlib.contextmanager
def opened(
    path: Path, shown: str, what: str, error: Callable[[str], Exception]
) -> Iterator[BinaryIO]:
    """`path` open for reading bytes. A missing file, a directory, or a failure to open or read
    it raises `error` with a one-line message naming `shown` and `what` it should have been."""
    try:
        with path.open("rb") as handle:
            yield handle
    except FileNotFoundError:
        raise error(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise error(f"{shown}: is a directory, not {what}") from None
    except OSError as exc:
        raise error(f"{shown}: cannot read: {exc.strerror}") from None


def foreign_encoding(head: bytes) -> str | None:
    """ "UTF-16" or "UTF-32" when `head` starts with that encoding's byte-order mark."""
    for bom, encoding in _FOREIGN_BOMS:
        if head.startswith(bom):
            return encoding
    return None


@dataclass(frozen=True, slots=True)
class NotText:
    """Where bytes stop being UTF-8 text: a NUL byte, or a byte UTF-8 cannot decode.

    `line` and `column` count from 1 within the bytes checked."""

    line: int
    column: int
    byte: int
    nul: bool


def decode_utf8(raw: bytes) -> str | NotText:
    """`raw` decoded strictly as UTF-8, or where it is not text. A NUL byte is not text even
    though UTF-8 allows it: it means UTF-16 without a byte-order mark, or a binary file."""
    nul = raw.find(b"\x00")
    if nul >= 0:
        return _not_text(raw, nul, nul=True)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _not_text(raw, exc.start, nul=False)


def _not_text(raw: bytes, offset: int, *, nul: bool) -> NotText:
    line = raw.count(b"\n", 0, offset) + 1
    column = offset - raw.rfind(b"\n", 0, offset)
    return NotText(line, column, raw[offset], nul)
