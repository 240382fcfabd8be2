"""Object filters: key globs, inclusive size and date bounds, and fields a source does not carry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orchestrator.exceptions import SourceError
from orchestrator.items import ObjectRef
from orchestrator.manifest import SourceConfig
from orchestrator.sources.filters import ObjectFilter

BUCKET = "examplebucket-1250000000"
MAY_1 = datetime(2024, 5, 1, tzinfo=UTC)
MAY_31 = datetime(2024, 5, 31, 23, 59, 59, tzinfo=UTC)


def keep(config: SourceConfig, *keys: str) -> list[str]:
    objects = ObjectFilter(config)
    return [key for key in keys if objects.matches(ObjectRef(BUCKET, key))]


def test_without_globs_every_key_matches() -> None:
    assert keep(SourceConfig(kind="prefix"), "a.jpg", "b/c.png", "") == ["a.jpg", "b/c.png", ""]


def test_a_key_matching_any_include_glob_is_kept() -> None:
    config = SourceConfig(kind="prefix", include=("*.jpg", "*.png"))
    assert keep(config, "a.jpg", "b/c.png", "d.gif") == ["a.jpg", "b/c.png"]


def test_a_key_matching_any_exclude_glob_is_dropped_even_when_included() -> None:
    config = SourceConfig(kind="prefix", include=("*.jpg",), exclude=("tmp/*", "*_old.jpg"))
    assert keep(config, "a.jpg", "tmp/b.jpg", "c_old.jpg", "d.png") == ["a.jpg"]


def test_globs_match_the_whole_key_case_sensitively_and_star_crosses_slashes() -> None:
    config = SourceConfig(kind="prefix", include=("photos/*.jpg",))
    assert keep(config, "photos/a.jpg", "photos/x/y/b.jpg", "photos/c.JPG", "old/photos/d.jpg") == [
        "photos/a.jpg",
        "photos/x/y/b.jpg",
    ]


def test_globs_support_character_classes_and_single_characters() -> None:
    config = SourceConfig(kind="prefix", include=("img_[0-9]?.jpg",))
    assert keep(config, "img_12.jpg", "img_1.jpg", "img_a2.jpg") == ["img_12.jpg"]


def test_globs_match_unicode_keys() -> None:
    assert keep(SourceConfig(kind="prefix", include=("相册/*",)), "相册/猫.jpg", "other.jpg") == [
        "相册/猫.jpg"
    ]


@pytest.mark.parametrize(("size", "kept"), [(9, False), (10, True), (20, True), (21, False)])
def test_size_bounds_are_inclusive(size: int, kept: bool) -> None:
    objects = ObjectFilter(SourceConfig(kind="prefix", min_size=10, max_size=20))
    assert objects.matches(ObjectRef(BUCKET, "a.jpg", size=size)) is kept


def test_a_size_bound_passes_an_object_whose_size_is_unknown() -> None:
    objects = ObjectFilter(SourceConfig(kind="prefix", min_size=10, max_size=20))
    assert objects.matches(ObjectRef(BUCKET, "a.jpg")) is True


@pytest.mark.parametrize(
    ("modified", "kept"),
    [
        ("2024-04-30T23:59:59Z", False),
        ("2024-05-01T00:00:00Z", True),
        ("2024-05-15T12:00:00+08:00", True),
        ("2024-05-31T23:59:59Z", True),
        ("2024-06-01T07:59:59+08:00", True),
        ("2024-06-01T00:00:00Z", False),
        ("2024-05-01T07:59:59+08:00", False),
        ("2024-05-01T00:00:00.000Z", True),
        ("2024-05-01T00:00:00", True),
    ],
)
def test_date_bounds_are_inclusive_and_compared_in_utc(modified: str, kept: bool) -> None:
    objects = ObjectFilter(
        SourceConfig(kind="prefix", modified_after=MAY_1, modified_before=MAY_31)
    )
    assert objects.matches(ObjectRef(BUCKET, "a.jpg", last_modified=modified)) is kept


def test_a_date_bound_passes_an_object_whose_date_is_unknown() -> None:
    objects = ObjectFilter(SourceConfig(kind="prefix", modified_after=MAY_1))
    assert objects.matches(ObjectRef(BUCKET, "a.jpg")) is True


def test_an_unreadable_date_is_a_source_error_only_when_a_date_bound_is_set() -> None:
    ref = ObjectRef(BUCKET, "a.jpg", last_modified="last tuesday")
    assert ObjectFilter(SourceConfig(kind="prefix")).matches(ref) is True
    with pytest.raises(SourceError) as caught:
        ObjectFilter(SourceConfig(kind="prefix", modified_before=MAY_31)).matches(ref)
    assert str(caught.value) == (
        "object 'a.jpg' in bucket 'examplebucket-1250000000' has an unreadable last-modified"
        " time 'last tuesday'"
    )


def test_every_condition_must_hold() -> None:
    objects = ObjectFilter(
        SourceConfig(kind="prefix", include=("*.jpg",), min_size=10, modified_after=MAY_1)
    )
    fits = ObjectRef(BUCKET, "a.jpg", size=10, last_modified="2024-05-02T00:00:00Z")
    assert objects.matches(fits) is True
    assert objects.matches(ObjectRef(BUCKET, "a.png", 10, None, "2024-05-02T00:00:00Z")) is False
    assert objects.matches(ObjectRef(BUCKET, "a.jpg", 9, None, "2024-05-02T00:00:00Z")) is False
    assert objects.matches(ObjectRef(BUCKET, "a.jpg", 10, None, "2024-04-30T00:00:00Z")) is False
