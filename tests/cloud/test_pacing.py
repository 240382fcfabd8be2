"""Pacing and adaptation of the rate limiter, on a controlled clock where possible."""

from __future__ import annotations

import bisect
import time

import pytest

from orchestrator.cloud.pacing import AdaptiveRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("rate", "per_window"), [(100, 10), (500, 50), (105, 10), (5, 1), (0.5, 1)]
)
def test_the_budget_is_cut_into_windows_of_about_100_ms(rate: float, per_window: int) -> None:
    limiter = AdaptiveRateLimiter(rate)
    throttler = limiter._throttler
    assert throttler.rate_limit == per_window
    assert throttler.rate_limit / throttler.period == pytest.approx(rate)
    assert throttler.period <= 0.1 or per_window == 1


def test_throttling_multiplies_the_rate_down_once_per_burst_of_answers() -> None:
    clock = Clock()
    limiter = AdaptiveRateLimiter(100, decrease=0.7, clock=clock)
    limiter.on_throttle(None)
    limiter.on_throttle(None)  # same burst: ignored
    assert limiter.rate == pytest.approx(70)
    clock.now += 1
    limiter.on_throttle(None)
    assert limiter.rate == pytest.approx(49)
    assert limiter.throttle_events == 2


def test_throttling_that_never_stops_keeps_lowering_the_rate() -> None:
    clock = Clock()
    limiter = AdaptiveRateLimiter(300, decrease=0.7, clock=clock)
    for _ in range(20):  # a 429 every 50 ms for a second: one decrease per 0.25 s here
        clock.now += 0.05
        limiter.on_throttle(None)
    assert limiter.throttle_events == 4  # at 0.05, 0.30, 0.55 and 0.80 s
    assert limiter.rate == pytest.approx(300 * 0.7**4)


def test_the_rate_recovers_slowly_after_a_calm_period_and_never_passes_the_target() -> None:
    clock = Clock()
    limiter = AdaptiveRateLimiter(100, decrease=0.7, clock=clock)
    limiter.on_throttle(None)
    clock.now += 1.0
    limiter._recover(clock.now)
    assert limiter.rate == pytest.approx(70)  # not calm yet
    clock.now += 2.0
    limiter._recover(clock.now)
    assert 70 < limiter.rate < 85
    for _ in range(100):
        clock.now += 1.0
        limiter._recover(clock.now)
    assert limiter.rate == 100


def test_the_rate_never_falls_below_the_floor() -> None:
    clock = Clock()
    limiter = AdaptiveRateLimiter(10, clock=clock)
    for _ in range(50):
        clock.now += 5
        limiter.on_throttle(None)
    assert limiter.rate == pytest.approx(0.5)


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
