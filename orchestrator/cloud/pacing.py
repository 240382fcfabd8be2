"""Request pacing: evenly spaced slots under an asyncio-throttle cap, slowed on throttling and
recovered slowly.

Each call gets the next slot 1/rate after the previous one. asyncio-throttle keeps a sliding log
and caps any 100 ms at rate/10 calls, so that however the schedule is disturbed no 100 ms window
at the server sees more than rate/10 + 1. The cap equals the schedule, so a slot taken a little
late makes the next ones poll it briefly; a cap one higher polled less but let 12 requests reach
the server in one 100 ms window at 100/s. Only one task waits for a slot at a time; the others
wait on a FIFO lock, which keeps the cost flat however many workers are waiting.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

from asyncio_throttle.throttler import Throttler

from orchestrator.cloud.retry import RETRY_AFTER_MAX

__all__ = ["AdaptiveRateLimiter"]


class AdaptiveRateLimiter:
    """Paces calls at `rate` per second; on throttling multiplies the rate by `decrease`,
    honours Retry-After, and climbs back by `recovery` (a fraction of the current rate) per
    second once `calm_seconds` have passed without throttling."""

    def __init__(
        self,
        rate: float,
        *,
        min_rate: float = 0.5,
        decrease: float = 0.85,
        recovery: float = 0.05,
        calm_seconds: float = 2.0,
        debounce: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.target = float(rate)
        self.min_rate = min(min_rate, self.target)
        self.decrease = decrease
        self.recovery = recovery
        self.calm_seconds = calm_seconds
        self.debounce = debounce
        self._clock = clock
        self._lock = asyncio.Lock()
        self._throttler = Throttler(rate_limit=1, period=1.0)
        self._rate = self.target
        self._last_throttle = -math.inf
        self._last_decrease = -math.inf
        self._last_adjust = clock()
        self._next_slot = -math.inf
        self._resume_at = -math.inf
        self.throttle_events = 0
        self._configure(self.target)

    @property
    def rate(self) -> float:
        return self._rate

    def _configure(self, rate: float) -> None:
        self._rate = max(self.min_rate, min(self.target, rate))
        # The throttler is the hard cap: never more than rate/10 in any 100 ms window.
        per_window = max(1, math.floor(self._rate / 10))
        self._throttler.rate_limit = per_window
        self._throttler.period = per_window / self._rate
        self._throttler.retry_interval = min(0.001, self._throttler.period / 10)

    def _recover(self, now: float) -> None:
        if self._rate >= self.target or now - self._last_throttle < self.calm_seconds:
            self._last_adjust = now
            return
        elapsed = now - self._last_adjust
        if elapsed >= 0.25:
            self._configure(self._rate * (1 + self.recovery * elapsed))
            self._last_adjust = now

    async def acquire(self) -> None:
        async with self._lock:
            now = self._clock()
            if self._resume_at > now:
                await asyncio.sleep(self._resume_at - now)
            self._recover(self._clock())
            # Even spacing on a schedule that does not drift: each call gets the next slot
            # 1/rate after the previous one, so the window cap rarely has to poll, a stalled
            # loop does not turn into a burst, and oversleeping does not lower the rate.
            now = self._clock()
            slot = max(self._next_slot, now)
            if slot - now > 0.001:  # shorter waits cost more in wake-ups than they smooth
                await asyncio.sleep(slot - now)
            self._next_slot = slot + 1.0 / self._rate
            await self._throttler.acquire()  # type: ignore[no-untyped-call]

    def on_throttle(self, retry_after: float | None) -> None:
        now = self._clock()
        # Answers to requests sent before the last decrease say nothing new about the rate.
        if now - self._last_decrease > self.debounce:
            self.throttle_events += 1
            self._configure(self._rate * self.decrease)
            self._last_decrease = now
        self._last_throttle = now
        self._last_adjust = now
        if retry_after:
            self._resume_at = max(self._resume_at, now + min(retry_after, RETRY_AFTER_MAX))
