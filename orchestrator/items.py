"""The records that flow through the pipeline: an object a source found, and a planned item."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """One input object as a source found it; fields beyond the key come only from some sources."""

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
