"""Reading typed values out of a parsed TOML table, with one-line errors that name the file,
the line that holds the problem and the key (and, for an unknown key, the closest valid one)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from orchestrator.exceptions import ManifestError
from orchestrator.manifest.reading import Locator, Where
from orchestrator.manifest.values import (
    as_bool,
    as_float,
    as_int,
    as_str,
    cut,
    got,
    short,
)

__all__ = ["TableReader", "label"]

T = TypeVar("T")


def label(where: Where) -> str:
    """`[job]` for a table, `[job.priority #2]` for the second table of an array."""
    names = ".".join(str(part) for part in where if isinstance(part, str))
    index = [part for part in where if isinstance(part, int)]
    if not names:
        return ""
    suffix = f" #{index[-1] + 1}" if index else ""
    return f"[{names}{suffix}] "


class TableReader:
    """Typed getters over the parsed TOML of one file; each raises a located ManifestError."""

    # The top-level tables, named in the hint for an unknown one.
    root_tables: ClassVar[Sequence[str]] = ()

    def __init__(self, shown: str, path: Path, text: str, data: dict[str, Any]) -> None:
        self.shown = shown
        self.path = path
        self.locator = Locator(text)
        self.data = data

    # Errors

    def error(self, where: Where, message: str) -> ManifestError:
        number = self.locator.line(where)
        location = self.shown if number is None else f"{self.shown}:{number}"
        return ManifestError(f"{location}: {message}")

    def key_error(self, table: Where, key: str, problem: str) -> ManifestError:
        return self.error((*table, key), f"{label(table)}{key}: {problem}")

    def check_keys(self, table: Where, values: Mapping[str, Any], valid: Sequence[str]) -> None:
        for key, value in values.items():
            if key in valid:
                continue
            if not table and isinstance(value, dict):
                near = difflib.get_close_matches(key, self.root_tables, n=1)
                hint = f" (did you mean [{near[0]}]?)" if near else ""
                raise self.error((key,), f"unknown table [{cut(key)}]{hint}")
            near = difflib.get_close_matches(key, valid, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise self.error((*table, key), f"{label(table)}unknown key {short(key)}{hint}")

    # Typed getters: each returns the default when the key is absent

    def get(
        self,
        table: Where,
        values: Mapping[str, Any],
        key: str,
        convert: Callable[[Any], T | None],
        expected: str,
    ) -> T | None:
        if key not in values:
            return None
        value = values[key]
        result = convert(value)
        if result is None:
            raise self.key_error(table, key, f"must be {expected}, got {got(value)}")
        return result

    def required(self, table: Where, values: Mapping[str, Any], key: str) -> None:
        if key not in values:
            raise self.error(table, f"{label(table)}missing required key {key!r}")

    def text(
        self, table: Where, values: Mapping[str, Any], key: str, *, allow_empty: bool = False
    ) -> str | None:
        found = self.get(table, values, key, as_str, "a string")
        if found == "" and not allow_empty:
            raise self.key_error(table, key, "must not be empty")
        return found

    def required_text(
        self, table: Where, values: Mapping[str, Any], key: str, *, allow_empty: bool = False
    ) -> str:
        self.required(table, values, key)
        found = self.text(table, values, key, allow_empty=allow_empty)
        assert found is not None
        return found

    def integer(
        self, table: Where, values: Mapping[str, Any], key: str, minimum: int
    ) -> int | None:
        found = self.get(table, values, key, as_int, "an integer")
        if found is not None and found < minimum:
            raise self.key_error(table, key, f"must be at least {minimum}, got {cut(str(found))}")
        return found

    def number(self, table: Where, values: Mapping[str, Any], key: str) -> float | None:
        return self.get(table, values, key, as_float, "a finite number")

    def flag(self, table: Where, values: Mapping[str, Any], key: str) -> bool:
        return self.get(table, values, key, as_bool, "true or false") or False

    def level(self, table: Where, values: Mapping[str, Any], key: str) -> int | None:
        found = self.get(table, values, key, as_int, "an integer")
        if found is not None and found not in (0, 1, 2):
            raise self.key_error(table, key, f"must be 0, 1 or 2, got {cut(str(found))}")
        return found

    def table(self, values: Mapping[str, Any], key: str, valid: Sequence[str]) -> dict[str, Any]:
        if key not in values:
            raise self.error((), f"missing required table [{key}]")
        found = values[key]
        if not isinstance(found, dict):
            raise self.error((key,), f"{key}: must be a table, got {got(found)}")
        self.check_keys((key,), found, valid)
        return found

    def one_of(self, table: Where, values: Mapping[str, Any], keys: Sequence[str]) -> str:
        present = [key for key in keys if key in values]
        if len(present) == 1:
            return present[0]
        options = ", ".join(keys[:-1]) + f" or {keys[-1]}"
        got = " and ".join(present) if present else "none"
        where = (*table, present[-1]) if present else table
        raise self.error(where, f"{label(table)}needs exactly one of {options}, got {got}")
