"""[source] filters: key globs, sizes and dates, and which kinds of source take them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.manifest.support import after, error_of, load


@pytest.mark.parametrize(
    "line",
    [
        "min_size = 1",
        "max_size = 1",
        "modified_after = 2024-05-01",
        'modified_before = "2024-05-01"',
    ],
)
def test_size_and_date_filters_are_rejected_with_a_csv_source(line: str) -> None:
    text = after("prefix", line).replace('prefix = "photos/"', 'csv = "keys.csv"')
    key = line.split(" ")[0]
    assert error_of(text) == (
        f"thumbs.toml:9: [source] {key}: size and date filters need a prefix or inventory source"
        " (CSV rows carry no size or date)"
    )


def test_key_globs_are_allowed_with_a_csv_source() -> None:
    text = after("prefix", 'include = ["*.jpg"]').replace('prefix = "photos/"', 'csv = "k.csv"')
    assert load(text).source.include == ("*.jpg",)


def test_an_empty_glob_is_rejected() -> None:
    assert error_of(after("prefix", 'include = ["*.jpg", ""]')) == (
        "thumbs.toml:9: [source] include: must not contain an empty pattern"
    )


def test_sizes_must_not_be_negative() -> None:
    assert error_of(after("prefix", "min_size = -1")) == (
        "thumbs.toml:9: [source] min_size: must be at least 0, got -1"
    )


def test_min_size_must_not_exceed_max_size() -> None:
    assert error_of(after("prefix", "min_size = 10", "max_size = 9")) == (
        "thumbs.toml:10: [source] max_size: must be at least min_size (10), got 9"
    )


def test_modified_before_must_not_precede_modified_after() -> None:
    text = after("prefix", "modified_after = 2024-05-02", "modified_before = 2024-05-01")
    assert error_of(text) == (
        "thumbs.toml:10: [source] modified_before: must not be before modified_after"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01", datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-01T10:30:00", datetime(2024, 5, 1, 10, 30, tzinfo=UTC)),
        ("2024-05-01T10:30:00Z", datetime(2024, 5, 1, 10, 30, tzinfo=UTC)),
        ("2024-05-01T10:30:00+08:00", datetime(2024, 5, 1, 2, 30, tzinfo=UTC)),
        ('"2024-05-01"', datetime(2024, 5, 1, tzinfo=UTC)),
        ('"2024-05-01T10:30:00Z"', datetime(2024, 5, 1, 10, 30, tzinfo=UTC)),
        ('"2024-05-01 10:30:00-02:00"', datetime(2024, 5, 1, 12, 30, tzinfo=UTC)),
    ],
)
def test_dates_become_aware_utc_datetimes(value: str, expected: datetime) -> None:
    source = load(after("prefix", f"modified_after = {value}")).source
    assert source.modified_after == expected
    assert source.modified_after.tzinfo is UTC
