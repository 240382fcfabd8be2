"""Objects under a bucket prefix, listed page by page (COS GET Bucket, v1)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from orchestrator.cloud.client import CIClient
from orchestrator.cloud.models import ObjectPage
from orchestrator.cloud.retry import Retrier
from orchestrator.items import ObjectRef

__all__ = ["iter_prefix"]


async def iter_prefix(
    client: CIClient,
    bucket: str,
    prefix: str,
    *,
    retrier: Retrier | None = None,
) -> AsyncIterator[list[ObjectRef]]:
    """One list of ObjectRefs per listing page; folder markers (keys ending in '/') are skipped.

    A page that fails (COS throttles with 503 SlowDown) is asked for again per `retrier`; listing
    changes nothing, so even a page whose answer was lost is simply asked for again.
    """
    retrier = retrier or Retrier()
    marker = ""
    while True:

        async def page_after(after: str = marker) -> ObjectPage:
            return await client.list_objects_page(prefix=prefix, marker=after)

        page = await retrier.call(page_after, idempotent=True, name="list objects")
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
        if not page.is_truncated or not page.next_marker or page.next_marker == marker:
            return
        marker = page.next_marker


def _iso(value: str | None) -> str | None:
    # COS answers 2020-12-10T03:37:30.000Z; keep whole seconds, UTC.
    if not value:
        return None
    return value.split(".")[0].rstrip("Z") + "Z"
