"""Request pacing: evenly spaced slots under a 100 ms window cap, at a rate that a congestion
controller moves on the share of 429 answers, not on each one.

Pacing. Each call gets the next slot 1/rate after the previous one, on a schedule that does not
drift. A sliding log caps any 100 ms at rate/10 calls, so that however the schedule is disturbed
no 100 ms window at the server sees more than rate/10 + 1; when it is full, the waiter sleeps
until the oldest call leaves it (no polling). At short intervals slots go out in small groups, one
wake-up each: a group is a divisor of the window's budget, so groups on the schedule never break
the cap. Only one task waits for a slot at a time; the others wait on a FIFO lock, which keeps the
cost flat however many workers are waiting. A Retry-After stops every slot until it has passed
(capped at 60 s).

Throttling. CI's 429 means the account's quota is exceeded, but the quota is per account:
another service of the same user takes part of it, and a stray 429 is not evidence of our own
excess. The controller therefore asks one question: do the 429s follow what *we* send?

* It counts requests sent (`acquire`) and 429s received (`on_throttle`) over windows of at least
  `window_seconds` and `window_answers` requests (or `window_max_seconds`), and decides once per
  window on the share s = 429s / requests. A window that already holds `flood` (10) 429s and is
  clearly congested closes at once: at 400/s against a quota of 20/s a full window would be
  180 refusals, and their retries would drain the retry budget before the first cut.
* It keeps an estimate b of the background share: 429s that come whatever our rate (0 at
  first). A window is congested when its 429s exceed n·b by more than chance allows: `z`
  binomial standard deviations, at least two 429s and one percentage point.
* On congestion it cuts multiplicatively, by the excess: rate · (1 - (s - b)) · (1 - margin),
  and by `min_cut` (15 %) at least. If the server admits Q/s of our R/s and refuses the rest,
  s - b = (R - Q)/R and the cut lands just under Q in one step; a larger excess, a larger cut.
* Every cut is an experiment. The next window runs at the lower rate. If its share lost at
  least half of its excess over b, the 429s followed our rate: the cut stands, and b moves
  halfway to the share left at the lower rate unless that share is still congested (then the
  next cut is decided on it at once). If not, the cut may have been too small to show (when
  another client holds most of a shared quota, our cut lowers the total load only a little):
  the rate goes to `deep_cut` (half) of the cut rate for one more window. If the share still
  has not fallen (by half its excess, or by two standard errors below the first slower
  window's, which unlike the alarm window was not picked for its 429s), the 429s were background: the rate goes back to where it was and b becomes
  the share measured in the two slower windows (not the first, which was picked for its
  429s). A constant background thus costs two windows at a lower rate now and then, instead
  of a slide to the floor. A share of `max_background` (half) or more is never taken as
  background: when most requests are refused, sending fewer costs nothing.
* `z` is 3: with a background of 5 % a window of 150 answers is called congested by chance
  about once in 150 windows. At z = 2 it was one in 25, and each such false alarm whose next
  window looked "relieved" (it usually does: the alarm window was picked for its 429s) left a
  cut standing; enough of them in a row sank the rate again. With no background the floor of
  three 429s in a window decides, whatever z.
* While no window is congested the rate climbs additively, up to the target: `probe` (5 %) of
  the rate the last cut settled on per second, reached over `ramp_seconds` after the cut, so it
  creeps back towards the level that was too much and climbs faster once that is long past.
  b follows the share of calm windows (slowly, and only below the rate the server admitted at
  the last cut, where none of the 429s are ours).
* Measured on simulated time (a fake clock and a model server, as in the module's tests): with
  5 % of 429s at random the rate holds at 260-300/s of a target of 300 (the old controller
  sank to its floor); 300/s against a server admitting 100/s (burst 10) settles at 98/s
  accepted with 1.5 % of 429s; against 100/s shared with an evenly spaced client sending
  60/s, 43-49/s with about 2 % of 429s for us and 10-15 % for the other client (even spacing
  makes it lose races for tokens; the emulator runs show it near our own share).

Alternatives considered:

* The previous controller (×0.85 on a 429 at most every 0.2 s, +5 %/s after 2 s without any
  429): with 429s at random whatever the rate there is always one within 2 s, so the rate sinks to
  the floor and stays there (issue 13: 5 % background 429s took a 300/s run to 1-3 jobs/s).
  Longer calm periods or debounces only change how fast it sinks.
* AIMD on a share threshold alone (cut when s > 5 %): holds under a background below the
  threshold, sinks under one above it, and lets real congestion run up to the threshold
  before reacting. The threshold has to be set for a background nobody knows in advance.
* AWS's adaptive mode (CUBIC on each throttle, β = 0.7, capped at 2× the measured send rate):
  reacts to every throttle, so it sinks under a background exactly as the previous controller
  did; its cubic recovery is what one wants after a real cut, not after noise.
* A regression of the share on the rate over many windows: the principled version of the
  experiment above, but it needs the rate to wander to learn anything, and says less to a
  reader than "the share did not fall when we slowed down".
* Counting answers rather than sends would need a second feedback call from the client; the
  send count is the same figure shifted by one round trip (answers arriving just after a
  window are counted in the next), and lost answers simply count as not throttled.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from orchestrator.cloud.retry import RETRY_AFTER_MAX

__all__ = ["AdaptiveRateLimiter", "CongestionControl"]


class CongestionControl:
    """The rate to send at, from what was sent and which answers were 429 (see the module doc).

    Pure bookkeeping on an injected clock, so that tests can run it on simulated time."""

    def __init__(
        self,
        target: float,
        *,
        min_rate: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        window_seconds: float = 0.5,
        window_answers: int = 50,
        window_max_seconds: float = 5.0,
        z: float = 3.0,
        margin: float = 0.05,
        probe: float = 0.05,
        min_cut: float = 0.15,
        ramp_seconds: float = 10.0,
        max_background: float = 0.5,
        deep_cut: float = 0.5,
        flood: int = 10,
    ) -> None:
        if target <= 0:
            raise ValueError("rate must be positive")
        self.target = float(target)
        self.min_rate = min(min_rate, self.target)
        self.window_seconds = window_seconds
        self.window_answers = window_answers
        self.window_max_seconds = window_max_seconds
        self.z = z
        self.margin = margin
        self.probe = probe
        self.min_cut = min_cut
        self.ramp_seconds = ramp_seconds
        self.max_background = max_background
        self.deep_cut = deep_cut
        self.flood = flood
        self._clock = clock
        self.rate = self.target
        self.background = 0.0
        self.cuts = 0  # decreases made (including those undone as background)
        self.undone = 0  # decreases undone: the 429s did not follow the rate
        self._reference = self.target  # the rate the last cut settled on
        self._start = clock()
        self._sent = 0
        self._throttled = 0
        self._trial: _Trial | None = None
        self._knee = math.inf  # what the server admitted when the last cut was made
        self._last_cut = -math.inf

    def sent(self) -> None:
        self._sent += 1
        self._maybe_decide()

    def throttled(self) -> None:
        self._throttled += 1
        self._maybe_decide()

    def _maybe_decide(self) -> None:
        now = self._clock()
        elapsed = now - self._start
        sent, throttled = self._sent, min(self._throttled, self._sent)
        if sent == 0:
            return
        full = elapsed >= self.window_seconds and (
            sent >= self.window_answers or elapsed >= self.window_max_seconds
        )
        # A flood of 429s is not worth a whole window of retries (each one spends the retry
        # budget): decide at once. Not in a trial window, whose first answers may still be to
        # requests sent before the cut.
        flood = self._trial is None and throttled >= self.flood and self._congested(sent, throttled)
        if not (full or flood):
            return
        self._start, self._sent, self._throttled = now, 0, 0
        self._decide(sent, throttled, min(elapsed, self.window_max_seconds))

    def _congested(self, sent: int, throttled: int) -> bool:
        b = self.background
        excess = throttled - sent * b
        noise = self.z * math.sqrt(sent * max(b, 0.01) * (1 - b))
        return excess > max(noise, 2.0) and throttled / sent - b > 0.01

    @staticmethod
    def _dropped(n0: int, k0: int, n1: int, k1: int) -> bool:
        """Whether the share k1/n1 is below k0/n0 by more than two standard errors."""
        pooled = (k0 + k1) / (n0 + n1)
        spread = math.sqrt(max(pooled * (1 - pooled), 1e-9) * (1 / n0 + 1 / n1))
        return k0 / n0 - k1 / n1 > 2 * spread

    def _decide(self, sent: int, throttled: int, elapsed: float) -> None:
        share = throttled / sent
        now = self._clock()
        if self._trial is not None:
            trial, self._trial = self._trial, None
            if trial.deep:  # against the first slower window, which was not picked for its 429s
                fell = self._dropped(trial.trial_sent, trial.trial_throttled, sent, throttled)
            else:
                fell = share < (trial.share + self.background) / 2
            if not fell and share < self.max_background:
                if not trial.deep:
                    # Perhaps the cut was too small to show: another client may hold most of
                    # the quota, or the quota is far below our rate. Try once more, at half.
                    self._trial = trial._replace(
                        deep=True, trial_sent=sent, trial_throttled=throttled
                    )
                    self.rate = self._reference = max(self.min_rate, self.rate * self.deep_cut)
                    return
                # Slower twice, and about as many 429s: they do not come from our rate. Only
                # the windows at the lower rates estimate it (the first was picked for its 429s).
                self.background = (trial.trial_throttled + throttled) / (trial.trial_sent + sent)
                self.rate, self._knee = trial.rate, trial.knee
                self._reference, self._last_cut = trial.reference, trial.last_cut
                self.undone += 1
                return
            if fell and not self._congested(sent, throttled):
                # The cut stands, and what is left at the lower rate is nearer the background.
                self.background += 0.5 * (share - self.background)
        if self._congested(sent, throttled):
            excess = share - self.background
            self._trial = _Trial(
                self.rate, sent, throttled, self._knee, self._reference, self._last_cut
            )
            self._knee = self.rate * (1 - excess)
            cut = self.rate * min(1 - self.min_cut, (1 - excess) * (1 - self.margin))
            self.rate = self._reference = max(self.min_rate, cut)
            self._last_cut = now
            self.cuts += 1
            return
        if self.rate <= self._knee:  # above it, the share may include some of our own excess
            self.background += 0.05 * (share - self.background)
        # Slowly near the last cut, faster the longer the calm lasts.
        ramp = min(1.0, (now - self._last_cut) / self.ramp_seconds)
        self.rate = min(self.target, self.rate + self.probe * self._reference * elapsed * ramp)


class _Trial(NamedTuple):
    """The state before a cut, kept until the next window says whether the cut stands."""

    rate: float
    sent: int
    throttled: int
    knee: float
    reference: float
    last_cut: float
    deep: bool = False  # the second, deeper cut is under way
    trial_sent: int = 0  # the first trial window's figures, once it is over
    trial_throttled: int = 0

    @property
    def share(self) -> float:
        return self.throttled / self.sent


# A wake-up costs about as much CPU as the work of a request on a small VM: slots closer together
# than this go out in groups.
GROUP_SPAN = 0.01


class WindowCap:
    """At most `limit` calls in any `period` seconds: a log of the last `limit` call times."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit = limit
        self.period = period
        self._times: deque[float] = deque(maxlen=limit)

    def resize(self, limit: int, period: float) -> None:
        self.limit, self.period = limit, period
        self._times = deque(self._times, maxlen=limit)

    def ready_at(self, ahead: int = 0) -> float:
        """The earliest time the next call fits, and the `ahead` calls after it with it."""
        times = self._times
        oldest = ahead + len(times) - self.limit  # the call it must be `period` after
        return times[oldest] + self.period if 0 <= oldest < len(times) else -math.inf

    def add(self, at: float) -> None:
        self._times.append(at)


class AdaptiveRateLimiter:
    """Paces calls at the rate of a `CongestionControl` (at most `rate`), evenly spaced, never
    more than rate/10 in 100 ms, and honours Retry-After."""

    def __init__(
        self,
        rate: float,
        *,
        min_rate: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        control: CongestionControl | None = None,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.control = control or CongestionControl(rate, min_rate=min_rate, clock=clock)
        self._clock = clock
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._cap = WindowCap(1, 1.0)
        self._group = 1  # slots per wake-up
        self._in_group = 0  # slots of the current group already out
        self._configured = 0.0
        self._next_slot = -math.inf
        self._resume_at = -math.inf
        self._configure()

    @property
    def target(self) -> float:
        return self.control.target

    @property
    def min_rate(self) -> float:
        return self.control.min_rate

    @property
    def rate(self) -> float:
        return self.control.rate

    @property
    def throttle_events(self) -> int:
        """Decreases of the rate so far."""
        return self.control.cuts

    def _configure(self) -> None:
        rate = self.control.rate
        if rate == self._configured:
            return
        self._configured = rate
        # The hard cap: never more than rate/10 in any 100 ms window.
        per_window = max(1, math.floor(rate / 10))
        self._cap.resize(per_window, per_window / rate)
        # The smallest divisor of the window's budget whose slots span GROUP_SPAN.
        wanted = math.ceil(GROUP_SPAN * rate)
        self._group = next(
            n for n in range(1, per_window + 1) if n >= wanted and not per_window % n
        )
        self._in_group %= self._group

    async def acquire(self) -> None:
        async with self._lock:
            now = self._clock()
            if self._resume_at > now:
                await self._sleep(self._resume_at - now)
                self._in_group = 0
            self._configure()
            # Even spacing on a schedule that does not drift: each call gets the next slot
            # 1/rate after the previous one, so a stalled loop does not turn into a burst and
            # oversleeping does not lower the rate. The first slot of a group waits for its
            # time; the others of the group go with it.
            now = self._clock()
            slot = max(self._next_slot, now)
            if self._in_group == 0:  # the whole group must fit under the cap
                wait, ready = slot - now, self._cap.ready_at(self._group - 1)
            else:
                wait, ready = 0.0, self._cap.ready_at()
            if wait <= 0.001 and ready <= now:  # shorter waits cost more than they smooth
                wait = 0.0
            wait = max(wait, ready - now)
            if wait > 0:
                await self._sleep(wait)
                now = self._clock()
            self._next_slot = slot + 1.0 / self.control.rate
            self._in_group = (self._in_group + 1) % self._group
            self._cap.add(now)
            self.control.sent()

    def on_throttle(self, retry_after: float | None) -> None:
        self.control.throttled()
        if retry_after:
            now = self._clock()
            self._resume_at = max(self._resume_at, now + min(retry_after, RETRY_AFTER_MAX))
