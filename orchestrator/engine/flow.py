"""Shared run state between the submitter and the tracker: the count of outstanding jobs."""

from __future__ import annotations

import asyncio

__all__ = ["Outstanding"]


class Outstanding:
    """Jobs submitted and not yet final, kept under the queue's capacity."""

    def __init__(self, cap: int, initial: int = 0) -> None:
        self.cap = max(1, cap)
        self.count = initial
        self._changed = asyncio.Condition()

    async def wait_for_room(self, wanted: int, stop: asyncio.Event) -> int:
        """Wait until at least one more job fits (or `stop` is set); return how many fit."""
        async with self._changed:
            while self.count >= self.cap and not stop.is_set():
                waiter = asyncio.ensure_future(stop.wait())
                try:
                    await asyncio.wait_for(self._changed.wait(), timeout=1.0)
                except TimeoutError:
                    pass
                finally:
                    waiter.cancel()
            return max(0, min(wanted, self.cap - self.count))

    def add(self, n: int = 1) -> None:
        self.count += n

    async def done(self, n: int) -> None:
        if n:
            self.count = max(0, self.count - n)
            async with self._changed:
                self._changed.notify_all()
