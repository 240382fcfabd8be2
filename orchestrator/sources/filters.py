"""Narrowing a source's objects by key globs, size and modification time."""

from __future__ import annotations

from datetime import UTC, datetime
from fnmatch import fnmatchcase

from orchestrator.exceptions import SourceError
from orchestrator.items import ObjectRef
from orchestrator.manifest import SourceConfig

__all__ = ["ObjectFilter"]


class ObjectFilter:
    """Decides whether an object is in scope. Bounds are inclusive; a bound on a field the object
    does not carry (a CSV row has no size or date) lets it pass."""

    def __init__(self, config: SourceConfig) -> None:
        self._include = config.include
        self._exclude = config.exclude
        self._min_size = config.min_size
        self._max_size = config.max_size
        self._after = config.modified_after
        self._before = config.modified_before

    @property
    def passes_everything(self) -> bool:
        return not (
            self._include or self._exclude or self._min_size is not None
            or self._max_size is not None or self._after or self._before
        )  # fmt: skip

    def matches(self, ref: ObjectRef) -> bool:
        key = ref.key
        if self._include and not any(fnmatchcase(key, glob) for glob in self._include):
            return False
        if any(fnmatchcase(key, glob) for glob in self._exclude):
            return False
        if ref.size is not None:
            if self._min_size is not None and ref.size < self._min_size:
                return False
            if self._max_size is not None and ref.size > self._max_size:
                return False
        if ref.last_modified is not None and (self._after or self._before):
            modified = _parse_time(ref)
            if self._after is not None and modified < self._after:
                return False
            if self._before is not None and modified > self._before:
                return False
        return True


def _parse_time(ref: ObjectRef) -> datetime:
    assert ref.last_modified is not None
    try:
        parsed = datetime.fromisoformat(ref.last_modified)
    except ValueError:
        raise SourceError(
            f"object {ref.key!r} in bucket {ref.bucket!r} has an unreadable last-modified time"
            f" {ref.last_modified!r}"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
