"""Objects under a bucket prefix, listed page by page (COS GET Bucket, v1)."""

from __future__ import annotations

import asyncio
import contextlib
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

    def fetch(marker: str) -> asyncio.Task[ObjectPage]:
        async def page_after() -> ObjectPage:
            return await client.list_objects_page(prefix=prefix, marker=marker)

        return asyncio.ensure_future(retrier.call(page_after, idempotent=True, name="list objects"))

    # The next page is asked for as soon as this one's marker is known, so that the server
    # prepares it while this one is used.
    marker = ""
    pending = fetch(marker)
    try:
        while True:
            page = await pending
            more = page.is_truncated and page.next_marker and page.next_marker != marker
            if more:
                marker = page.next_marker or ""
                pending = fetch(marker)
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
            if not more:
                return
    finally:
        if not pending.done():
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pending


def _iso(value: str | None) -> str | None:
    # COS answers 2020-12-10T03:37:30.000Z; keep whole seconds, UTC.
    if not value:
        return None
    return value.split(".")[0].rstrip("Z") + "Z"
