"""The one UTC timestamp format picjobs writes, and the older shapes it still reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from orchestrator.timefmt import format_utc, parse_utc, utc_now


def test_a_moment_is_written_in_utc_with_milliseconds_and_a_z() -> None:
    moment = datetime(2024, 5, 1, 18, 30, 15, 250999, tzinfo=timezone(timedelta(hours=8)))
    assert format_utc(moment) == "2024-05-01T10:30:15.250Z"


def test_a_naive_moment_is_taken_to_be_utc() -> None:
    assert format_utc(datetime(2024, 5, 1, 10, 0)) == "2024-05-01T10:00:00.000Z"


def test_now_is_aware_and_in_utc() -> None:
    assert utc_now().utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text",
    [
        "2024-05-01T10:00:00.000Z",
        "2024-05-01T10:00:00Z",
        "2024-05-01T10:00:00+00:00",
        "2024-05-01T18:00:00+08:00",
        "2024-05-01T10:00:00",
    ],
)
def test_every_shape_picjobs_has_written_is_read_back(text: str) -> None:
    assert parse_utc(text) == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def test_what_is_written_reads_back_to_the_millisecond() -> None:
    moment = datetime(2024, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)
    assert parse_utc(format_utc(moment)) == moment
