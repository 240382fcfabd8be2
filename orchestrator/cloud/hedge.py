"""Stragglers, seen from the caller: `watched` runs a call so that its caller learns when the
call's CI request straggles (the submitter then lets a submission go on alone); `hedged` sends a
read that straggles a second time.

Hedged reads: a read still unanswered when the client takes it for a straggler (later than
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
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from orchestrator.cloud.transport import STRAGGLING

__all__ = ["hedged", "watched"]

T = TypeVar("T")


def watched(coro: Coroutine[Any, Any, T]) -> tuple[asyncio.Task[T], asyncio.Future[None]]:
    """`coro` as a task, and a future done once its CI request straggles or the task ends.
    The task is the caller's to cancel: it goes on if the caller stops waiting."""
    loop = asyncio.get_running_loop()
    turn: asyncio.Future[None] = loop.create_future()

    def wake(_: object = None) -> None:
        if not turn.done():
            turn.set_result(None)

    context = contextvars.copy_context()
    context.run(STRAGGLING.set, wake)
    task = loop.create_task(coro, context=context)
    task.add_done_callback(wake)
    return task, turn


async def hedged(fn: Callable[[], Awaitable[T]]) -> T:
    """`fn()`, and a second `fn()` if the first straggles; then whichever of the two ends first."""

    async def first_call() -> T:
        return await fn()

    first, late = watched(first_call())
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
