"""Pacing and throttling control of the rate limiter, on simulated time where possible.

The throttling tests drive the controller with a fake clock: requests leave evenly at the
controller's rate and a simulated server answers each one, so a minute of traffic takes
milliseconds and nothing depends on how busy the machine is.
"""

from __future__ import annotations

import bisect
import random
import time
from collections.abc import Callable
from typing import Protocol

import pytest

from orchestrator.cloud.pacing import AdaptiveRateLimiter, CongestionControl


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Controller(Protocol):
    @property
    def rate(self) -> float: ...

    def sent(self) -> None: ...

    def throttled(self) -> None: ...


class OldController:
    """The controller before issue 13, as a model of its decision rule: ×0.85 on a 429 at most
    every 0.2 s, and +5 % of the rate per second once 2 s have passed without a 429."""

    def __init__(self, target: float, clock: Clock) -> None:
        self.target, self.rate, self.clock = target, target, clock
        self.last_throttle = self.last_decrease = -1e9
        self.last_adjust = clock()

    def sent(self) -> None:
        now = self.clock()
        if self.rate >= self.target or now - self.last_throttle < 2.0:
            self.last_adjust = now
        elif now - self.last_adjust >= 0.25:
            self.rate = min(self.target, self.rate * (1 + 0.05 * (now - self.last_adjust)))
            self.last_adjust = now

    def throttled(self) -> None:
        now = self.clock()
        if now - self.last_decrease > 0.2:
            self.rate = max(0.5, self.rate * 0.85)
            self.last_decrease = now
        self.last_throttle = self.last_adjust = now


class Quota:
    """A server's token bucket: `rate` a second, bursts of `burst`."""

    def __init__(self, rate: float, burst: int, clock: Clock) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens, self.updated = float(burst), clock()

    def admits(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class Traffic:
    """What a simulated run sent and how much of it was refused, per second of simulated time."""

    def __init__(self) -> None:
        self.sent: list[int] = []
        self.refused: list[int] = []

    def record(self, second: int, refused: bool) -> None:
        while len(self.sent) <= second:
            self.sent.append(0)
            self.refused.append(0)
        self.sent[second] += 1
        self.refused[second] += refused

    def rate(self, start: int, end: int | None = None) -> float:
        seconds = self.sent[start:end]
        return sum(seconds) / len(seconds)

    def refused_share(self, start: int = 0, end: int | None = None) -> float:
        return sum(self.refused[start:end]) / sum(self.sent[start:end])


def simulate(
    controller: Controller, clock: Clock, seconds: float, refuses: Callable[[], bool]
) -> Traffic:
    """Requests evenly spaced at the controller's current rate; `refuses` answers each one."""
    traffic = Traffic()
    end = clock() + seconds
    start = clock()
    while clock() < end:
        controller.sent()
        refused = refuses()
        traffic.record(int(clock() - start), refused)
        if refused:
            controller.throttled()
        clock.now += 1 / controller.rate
    return traffic


def test_the_old_rule_sinks_on_random_429s_and_the_new_one_holds_the_rate() -> None:
    # 5 % of answers are 429 whatever the rate: another client's share of the quota.
    old_clock, new_clock = Clock(), Clock()
    noise = random.Random(13)
    old = simulate(OldController(300, old_clock), old_clock, 120, lambda: noise.random() < 0.05)
    noise = random.Random(13)
    control = CongestionControl(300, clock=new_clock)
    new = simulate(control, new_clock, 120, lambda: noise.random() < 0.05)

    assert old.rate(60) < 30  # sunk: a tenth of the configured rate, and staying there
    assert new.rate(0) >= 150  # at least half the configured rate, over the whole run
    assert new.rate(60) >= 150
    assert control.undone >= 1  # it tried slowing down, saw no change, and went back
    assert 0.02 < control.background < 0.15


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_429s_that_follow_our_rate_cut_it_to_near_what_the_server_admits(seed: int) -> None:
    clock = Clock()
    quota = Quota(100, 10, clock)
    control = CongestionControl(300, clock=clock)
    jitter = random.Random(seed)
    traffic = simulate(control, clock, 60, lambda: not quota.admits() or jitter.random() < 0.001)

    assert control.cuts >= 1
    assert 70 <= traffic.rate(20) <= 130  # near the 100/s admitted, far from the 300 configured
    assert traffic.refused_share(20) < 0.10
    assert traffic.refused_share() < 0.15  # the first second at 300/s included


def test_a_quota_shared_with_another_client_leaves_both_few_429s() -> None:
    clock = Clock()
    quota = Quota(100, 10, clock)
    control = CongestionControl(100, clock=clock)
    other_next, other = clock.now + 0.5 / 60, Traffic()

    def refuses() -> bool:
        nonlocal other_next
        while other_next <= clock.now:  # the other client sends 60/s, evenly
            saved, clock.now = clock.now, other_next
            other.record(0, not quota.admits())
            clock.now, other_next = saved, other_next + 1 / 60
        return not quota.admits()

    ours = simulate(control, clock, 60, refuses)

    assert 30 <= ours.rate(10) <= 60  # the 40/s the other client leaves, roughly
    assert ours.refused_share(10) < 0.10
    assert other.refused_share() < 0.20


def test_cuts_that_do_not_lower_the_share_are_undone_and_the_share_taken_as_background() -> None:
    clock = Clock()
    control = CongestionControl(100, clock=clock)
    # Four windows of 50 requests, a fifth refused whatever the rate: the alarm, the first cut,
    # the deeper cut, and the rate restored.
    for _ in range(2):
        for i in range(100):
            clock.now += 0.01
            control.sent()
            if i % 5 == 0:
                control.throttled()
    assert control.cuts == 1
    assert control.undone == 1
    assert control.rate == pytest.approx(100)
    assert control.background == pytest.approx(0.2, abs=0.02)


def test_the_rate_never_falls_below_the_floor_nor_climbs_above_the_target() -> None:
    clock = Clock()
    control = CongestionControl(10, min_rate=2, clock=clock)
    simulate(control, clock, 30, lambda: True)
    assert control.rate == pytest.approx(2)
    simulate(control, clock, 600, lambda: False)
    assert control.rate == pytest.approx(10)


async def test_retry_after_holds_every_slot_until_it_has_passed() -> None:
    clock = Clock()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    limiter = AdaptiveRateLimiter(1000, clock=clock, sleep=sleep)
    await limiter.acquire()
    limiter.on_throttle(3.0)
    await limiter.acquire()
    assert slept and slept[0] == pytest.approx(3.0)
    assert clock.now >= 1003.0
    limiter.on_throttle(3600.0)  # capped at a minute
    await limiter.acquire()
    assert slept[-1] == pytest.approx(60.0, abs=0.01)


async def _acquire_on_simulated_time(rate: float, count: int) -> tuple[list[float], int]:
    """The times of `count` acquisitions on a fake clock whose sleeps overshoot a little, and how
    many times the limiter slept."""
    clock = Clock()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds + 0.0003 * (len(slept) % 3)  # asyncio.sleep always oversleeps

    limiter = AdaptiveRateLimiter(rate, clock=clock, sleep=sleep)
    times = []
    for _ in range(count):
        await limiter.acquire()
        times.append(clock.now)
    return times, len(slept)


@pytest.mark.parametrize(("rate", "group"), [(100, 1), (200, 2), (500, 5), (1000, 10)])
async def test_at_short_intervals_slots_go_in_groups_and_the_window_cap_still_holds(
    rate: float, group: int
) -> None:
    times, sleeps = await _acquire_on_simulated_time(rate, 2000)
    per_window = rate // 10
    assert max(bisect.bisect_left(times, t + 0.1) - i for i, t in enumerate(times)) <= per_window
    assert sleeps <= 1.1 * len(times) / group  # one wake-up a group, few for the cap
    assert len(times) / (times[-1] - times[0]) >= 0.97 * rate


@pytest.mark.parametrize(
    ("rate", "per_window"), [(100, 10), (500, 50), (105, 10), (5, 1), (0.5, 1)]
)
def test_the_budget_is_cut_into_windows_of_about_100_ms(rate: float, per_window: int) -> None:
    limiter = AdaptiveRateLimiter(rate)
    cap = limiter._cap
    assert cap.limit == per_window
    assert cap.limit / cap.period == pytest.approx(rate)
    assert cap.period <= 0.1 or per_window == 1


async def test_acquisitions_are_evenly_spaced_never_more_than_a_tenth_of_the_rate_in_100_ms() -> (
    None
):
    limiter = AdaptiveRateLimiter(1000)
    times = []
    for _ in range(300):
        await limiter.acquire()
        times.append(time.monotonic())
    # Evenly spaced, not in bursts: at most rate/10 (+1 at the edge) in any 100 ms.
    assert max(bisect.bisect_right(times, t + 0.1) - i for i, t in enumerate(times)) <= 101
    assert times[-1] - times[0] >= 0.29  # 300 slots 1 ms apart, never ahead of schedule
