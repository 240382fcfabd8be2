"""Hedged reads: a read still unanswered when the client takes it for a straggler (later than
the answers so far say is normal: its answer lost, most likely) is sent a second time, and the
first answer wins.

Only for idempotent calls (listing jobs, describing them): a second `POST /pic_jobs` may create
a second job. A lost answer then costs about one normal answer time more, not a read timeout,
which matters where the run waits on the read: settling unknown outcomes, the last polls. A
slow service costs one extra request per slow read, and the second copy is not hedged again.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Awaitable, Callable
from typing import TypeVar

from orchestrator.cloud.transport import STRAGGLING

__all__ = ["hedged"]

T = TypeVar("T")


async def hedged(fn: Callable[[], Awaitable[T]]) -> T:
    """`fn()`, and a second `fn()` if the first straggles; then whichever of the two ends first."""
    loop = asyncio.get_running_loop()
    late = loop.create_future()

    def straggling() -> None:
        if not late.done():
            late.set_result(None)

    context = contextvars.copy_context()
    context.run(STRAGGLING.set, straggling)

    async def first_call() -> T:
        return await fn()

    first = loop.create_task(first_call(), context=context)
    first.add_done_callback(lambda _: straggling())
    try:
        await late
    except asyncio.CancelledError:
        first.cancel()
        raise
    if first.done():
        return first.result()
    second = asyncio.ensure_future(fn())
    tasks: set[asyncio.Future[T]] = {first, second}
    try:
        done, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        # Whichever ends first decides: a success is the answer; an error (the copy refused,
        # or the straggler timed out at last) goes to the caller's retry at once, rather than
        # waiting on a request that is most likely lost.
        answered = [task for task in done if task.exception() is None]
        return (answered or list(done))[0].result()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
