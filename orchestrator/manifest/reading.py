"""Reading a manifest file: its bytes as UTF-8 text, parsed as TOML, and where each key is written.

Every problem is a one-line ManifestError naming the file and, when there is one, the line.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Any, Final

from orchestrator.exceptions import ManifestError
from orchestrator.textfile import UTF8_BOM, NotText, decode_utf8, foreign_encoding, opened

__all__ = ["MAX_MANIFEST_BYTES", "Locator", "Where", "read_toml"]

# Far beyond any hand-written manifest; bounds what a wrong path can make us read.
MAX_MANIFEST_BYTES: Final = 1024 * 1024

# A table or key path; arrays of tables add an index: ("job", "priority", 0, "match").
Where = tuple[str | int, ...]


def read_toml(path: Path, shown: str) -> tuple[str, dict[str, Any]]:
    """The text of the manifest at `path` and what it parses to; `shown` names it in errors."""
    text = _read_text(path, shown)
    _check_key_depth(shown, text)
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(_syntax_message(shown, text, str(exc))) from None
    except ValueError:  # int()'s limit on decimal digits, which tomllib lets through
        limit = sys.get_int_max_str_digits()
        found = re.search(rf"[0-9_]{{{limit + 1},}}", text)
        line = "" if found is None else f":{text.count(chr(10), 0, found.start()) + 1}"
        raise ManifestError(f"{shown}{line}: a number of more than {limit} digits") from None
    except RecursionError:
        lines = text.splitlines()
        deep = (n for n, line in enumerate(lines, 1) if line.count("[") + line.count("{") > 100)
        line = next((f":{number}" for number in deep), "")
        raise ManifestError(f"{shown}{line}: arrays or inline tables nested too deeply") from None


def _read_text(path: Path, shown: str) -> str:
    with opened(path, shown, "a manifest file", ManifestError) as handle:
        raw = handle.read(MAX_MANIFEST_BYTES + 1)
    if len(raw) > MAX_MANIFEST_BYTES:
        line = raw.count(b"\n") + 1
        raise ManifestError(
            f"{shown}:{line}: the file grows past {MAX_MANIFEST_BYTES // 2**20} MiB on this"
            " line; a manifest is a small text file (is this the right file?)"
        )
    encoding = foreign_encoding(raw)
    if encoding is not None:
        raise ManifestError(
            f"{shown}: the file is {encoding} (it has a byte-order mark); save it as UTF-8"
        )
    text = decode_utf8(raw.removeprefix(UTF8_BOM))
    if not isinstance(text, NotText):
        return text
    if text.nul:
        raise ManifestError(
            f"{shown}:{text.line}: the file contains a NUL byte; a manifest is UTF-8 text"
            " (is it UTF-16 or binary?)"
        )
    raise ManifestError(
        f"{shown}:{text.line}: not valid UTF-8 (byte 0x{text.byte:02x}; Latin-1 or another legacy"
        " encoding?); save the file as UTF-8"
    )


_TOML_WHERE = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)$")


def _syntax_message(shown: str, text: str, message: str) -> str:
    found = _TOML_WHERE.search(message)
    if found is None:
        return f"{shown}: {message}"
    what = message[: found.start()]
    if found.group(1) is None:
        return f"{shown}:{max(len(text.splitlines()), 1)}: {what} (at end of document)"
    return f"{shown}:{found.group(1)}: {what} (column {found.group(2)})"


# Locating keys in the text


_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*\]\]?\s*(?:#.*)?$")
_ASSIGN = re.compile(rf"^\s*({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*=")
_PART = re.compile(_KEY_PART)


def _split_key(dotted: str) -> tuple[str, ...]:
    return tuple(part.strip("\"'") for part in _PART.findall(dotted))


# No manifest key has more than 3 parts; tomllib takes quadratic time in the number of parts.
_MAX_KEY_PARTS = 16
_LINE_KEY = re.compile(rf"^\s*\[{{0,2}}\s*({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)")


def _check_key_depth(shown: str, text: str) -> None:
    for number, line in enumerate(text.splitlines(), start=1):
        found = _LINE_KEY.match(line)
        if found is None or found.group(1).count(".") < _MAX_KEY_PARTS:
            continue
        parts = len(_split_key(found.group(1)))
        if parts > _MAX_KEY_PARTS:
            raise ManifestError(
                f"{shown}:{number}: a key of {parts} dotted parts; no manifest key has more than 3"
            )


class Locator:
    """Maps table and key paths to the first line naming them; arrays of tables get an index."""

    def __init__(self, text: str) -> None:
        self._lines: dict[Where, int] = {}
        table: Where = ()
        counts: dict[Where, int] = {}
        # The element each array of tables is at: `[[job.priority]]` belongs to the last [[job]].
        current: dict[tuple[str, ...], Where] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            header = _HEADER.match(line)
            if header is not None:
                names = _split_key(header.group(2))
                table = ()
                for end, name in enumerate(names[:-1], start=1):
                    table = current.get(names[:end], (*table, name))
                table = (*table, names[-1])
                if header.group(1) == "[[":
                    counts[table] = counts.get(table, 0) + 1
                    current[names] = table = (*table, counts[table] - 1)
                self._lines.setdefault(table, number)
                self._lines.setdefault(names, number)
                continue
            assign = _ASSIGN.match(line)
            if assign is not None:
                self._lines.setdefault((*table, *_split_key(assign.group(1))), number)

    def line(self, where: Where) -> int | None:
        """The line of `where`, else of the nearest enclosing table or key that is written out."""
        for end in range(len(where), 0, -1):
            number = self._lines.get(where[:end])
            if number is not None:
                return number
        return None
