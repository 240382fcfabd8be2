"""The records that flow through the pipeline: an object a source found, and a planned item."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class ObjectRef(NamedTuple):
    """One input object as a source found it; fields beyond the key come only from some sources.

    A named tuple, not a frozen dataclass: a million-row manifest makes a million of them, and
    a tuple is built in a quarter of the time."""

    bucket: str
    key: str
    size: int | None = None
    etag: str | None = None
    last_modified: str | None = None  # ISO 8601 UTC, e.g. 2024-05-01T10:00:00Z
    # Per-row overrides a CSV with a header may carry.
    output_key: str | None = None
    job_level: int | None = None
    user_data: str | None = None
    line: int | None = None  # where a file source found it, for error messages
    job: str | None = None  # a CSV row's `job`: only that job of the manifest plans it


@dataclass(frozen=True, slots=True)
class Item:
    """One planned PicProcess job: what to process, where to write it, and at which priority."""

    item_id: str
    bucket: str
    key: str
    output_bucket: str
    output_region: str
    output_key: str
    job_level: int
    user_data: str | None = None
    etag: str | None = None
    size: int | None = None
    last_modified: str | None = None
    job: str | None = None  # the manifest job that planned it; None for a single unnamed [job]

    def record(self) -> ItemRecord:
        return (
            self.item_id, self.bucket, self.key, self.output_bucket, self.output_region,
            self.output_key, self.job_level, self.user_data, self.etag, self.size,
            self.last_modified, self.job,
        )  # fmt: skip


# An Item's fields as a plain tuple, in order: what expansion hands the ledger, since a million
# tuples cost a fraction of a million frozen dataclasses.
ItemRecord = tuple[
    str, str, str, str, str, str, int, str | None, str | None, int | None, str | None, str | None
]
