"""Objects under a bucket prefix, listed page by page (COS GET Bucket, v1)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol, TypeVar

from orchestrator.cloud.client import CIClient
from orchestrator.cloud.keypage import KeyPage, iso_time
from orchestrator.cloud.models import ObjectPage
from orchestrator.cloud.retry import Retrier
from orchestrator.items import ObjectRef

__all__ = ["iter_key_pages", "iter_prefix"]


class _Page(Protocol):
    @property
    def is_truncated(self) -> bool: ...
    @property
    def next_marker(self) -> str | None: ...


_P = TypeVar("_P", bound=_Page)


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

    def fetch(marker: str) -> Awaitable[ObjectPage]:
        return client.list_objects_page(prefix=prefix, marker=marker)

    async for page in _pages(fetch, retrier):
        yield [
            ObjectRef(
                bucket=bucket,
                key=entry.key,
                size=entry.size,
                etag=entry.etag,
                last_modified=iso_time(entry.last_modified),
            )
            for entry in page.entries
            if not entry.key.endswith("/")
        ]


def iter_key_pages(
    client: CIClient, prefix: str, *, retrier: Retrier | None = None
) -> AsyncIterator[KeyPage]:
    """The listing under `prefix` read for keys, ETags and times only (see `keypage`), as
    `iter_prefix` asks for it."""
    return _pages(lambda marker: client.list_key_page(prefix=prefix, marker=marker), retrier)


async def _pages(
    fetch_page: Callable[[str], Awaitable[_P]], retrier: Retrier | None
) -> AsyncIterator[_P]:
    retrier = retrier or Retrier()
    # Pages are asked for by a task of their own, the next one as soon as this one's marker is
    # known, so that the server prepares it while this one is used; a consumer that is slow,
    # or shares the loop with other work, does not delay the requests.
    ready: asyncio.Queue[_P | BaseException | None] = asyncio.Queue(maxsize=_AHEAD)

    async def produce() -> None:
        marker = ""
        try:
            while True:
                after = functools.partial(fetch_page, marker)
                page = await retrier.call(after, idempotent=True, name="list objects")
                more = page.is_truncated and page.next_marker and page.next_marker != marker
                await ready.put(page)
                if not more:
                    break
                marker = page.next_marker or ""
        except Exception as exc:  # handed to the consumer, which raises it
            await ready.put(exc)
            return
        await ready.put(None)

    producer = asyncio.ensure_future(produce())
    try:
        while (page := await ready.get()) is not None:
            if isinstance(page, BaseException):
                raise page
            yield page
    finally:
        if not producer.done():
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer


_AHEAD = 2  # pages read and not used yet, at most (the next one is asked for meanwhile)
