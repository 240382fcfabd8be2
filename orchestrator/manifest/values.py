"""Checks and conversions of single values: the validator's, and those the CSV source and the
planner share with it (output templates, user data)."""

from __future__ import annotations

import math
import string
from datetime import UTC, date, datetime, time
from typing import Final
from urllib.parse import urlsplit

__all__ = [
    "MAX_USER_DATA",
    "OUTPUT_PLACEHOLDERS",
    "is_printable_ascii",
    "output_template_problem",
    "user_data_problem",
]

OUTPUT_PLACEHOLDERS: Final = ("key", "dir", "name", "stem", "ext")
MAX_USER_DATA: Final = 1024
DATE_EXPECTED: Final = "an ISO date or datetime such as 2024-05-01 or 2024-05-01T10:00:00Z"


def is_printable_ascii(text: str) -> bool:
    """True when every character is in 0x20..0x7e."""
    return all(" " <= ch <= "~" for ch in text)


def output_template_problem(template: str) -> str | None:
    """Why `template` is not a valid output template, or None when it is."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"malformed braces in {short(template)} ({exc}; write '{{{{' or '}}}}' for a literal brace)"
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in OUTPUT_PLACEHOLDERS:
            allowed = " ".join("{" + known + "}" for known in OUTPUT_PLACEHOLDERS)
            shown = name if len(name) <= 40 else name[:37] + "..."
            return f"unknown placeholder {{{shown}}} in {short(template)}; use {allowed}"
        if spec or conversion:
            return f"placeholder {{{name}}} takes no conversion or format spec in {short(template)}"
    if template.startswith("/"):
        return f"must not start with '/', got {short(template)}"
    return None


def user_data_problem(user_data: str) -> str | None:
    """Why `user_data` cannot be sent to CI, or None when it can."""
    if not is_printable_ascii(user_data):
        return f"must be printable ASCII (0x20..0x7e), got {short(user_data)}"
    if len(user_data) > MAX_USER_DATA:
        return f"must be at most {MAX_USER_DATA} characters, got {len(user_data)}"
    return None


# Showing values in messages


def type_name(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, datetime):
        return "datetime"
    names = {str: "string", int: "integer", float: "float", list: "array", dict: "table"}
    names |= {date: "date", time: "time"}
    return names.get(type(value), type(value).__name__)


def got(value: object) -> str:
    if isinstance(value, list | dict):
        return type_name(value)
    shown = repr(value) if isinstance(value, str) else str(value).lower()
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{type_name(value)} {shown}"


def cut(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short(text: str) -> str:
    """`text` quoted as repr() does, cut to 60 characters: messages stay one readable line."""
    shown = repr(text)
    return shown if len(shown) <= 60 else shown[:57] + "..."


# Conversions: each returns None when the value is not of its type


def as_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def as_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_float(value: object) -> float | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer beyond the largest float
        return None
    return number if math.isfinite(number) else None


def as_bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def as_strings(value: object) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    return None


def as_utc(value: object) -> datetime | None:
    """A TOML or ISO date/datetime as aware UTC: no offset means UTC, a date means midnight."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return None


def is_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. a malformed IPv6 host: http://[job]/
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and value.strip() == value
