"""The one UTC timestamp format picjobs writes: ISO 8601 with milliseconds and a Z.

`2024-05-01T10:00:00.000Z`. Every stamp has the same width, so stamps sort as text in the
ledger's columns; `parse_utc` also reads the older shapes (seconds only, `+00:00`).
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["format_utc", "parse_utc", "utc_now"]


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_utc(moment: datetime) -> str:
    """`moment` in UTC as `YYYY-MM-DDTHH:MM:SS.mmmZ`; a naive datetime is taken to be UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_utc(text: str) -> datetime:
    """A stamp written by `format_utc` or by an older picjobs, as an aware datetime."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
