"""Objects under a bucket prefix, listed page by page (COS GET Bucket, v1)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from orchestrator.ci.client import CIClient
from orchestrator.items import ObjectRef

__all__ = ["iter_prefix"]


async def iter_prefix(client: CIClient, bucket: str, prefix: str) -> AsyncIterator[list[ObjectRef]]:
    """One list of ObjectRefs per listing page; folder markers (keys ending in '/') are skipped."""
    async for page in client.iter_object_pages(prefix=prefix):
        yield [
            ObjectRef(
                bucket=bucket,
                key=entry.key,
                size=entry.size,
                etag=entry.etag,
                last_modified=_iso(entry.last_modified),
            )
            for entry in page.entries
            if not entry.key.endswith("/")
        ]


def _iso(value: str | None) -> str | None:
    # COS answers 2020-12-10T03:37:30.000Z; keep whole seconds, UTC.
    if not value:
        return None
    return value.split(".")[0].rstrip("Z") + "Z"
