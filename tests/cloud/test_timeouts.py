"""The read timeout of CI calls is learnt from the answers, between a floor and a ceiling."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.cloud.timeouts import AnswerTimeout, TimeoutPolicy

POLICY = TimeoutPolicy(floor=3.0, ceiling=30.0, warmup=16)


def warmed(seconds: float = 0.01, policy: TimeoutPolicy = POLICY) -> AnswerTimeout:
    timeout = AnswerTimeout(policy)
    for _ in range(policy.warmup):
        timeout.answered(seconds)
    return timeout


def test_the_ceiling_applies_until_enough_answers_have_been_seen() -> None:
    timeout = AnswerTimeout(POLICY)
    for _ in range(POLICY.warmup - 1):
        timeout.answered(0.01)
        assert timeout.current() == 30.0
    timeout.answered(0.01)
    assert timeout.current() == 3.0


def test_fast_answers_bring_the_timeout_down_to_the_floor_not_below() -> None:
    assert warmed(0.001).current() == 3.0


def test_slow_answers_keep_the_timeout_a_margin_above_them() -> None:
    timeout = warmed(2.0)
    for seconds in (1.0, 3.0, 2.0, 4.0, 1.5, 2.5) * 5:
        timeout.answered(seconds)
    assert 4.0 < timeout.current() < 30.0


def test_each_timeout_doubles_the_wait_up_to_the_ceiling_and_an_answer_ends_the_backoff() -> None:
    timeout = warmed()
    seen = []
    for _ in range(5):
        timeout.timed_out()
        seen.append(timeout.current())
    assert seen == [6.0, 12.0, 24.0, 30.0, 30.0]
    timeout.answered(0.01)
    assert timeout.current() == 3.0


def test_timeouts_during_the_warmup_leave_the_ceiling_alone() -> None:
    timeout = AnswerTimeout(POLICY)
    timeout.timed_out()
    assert timeout.current() == 30.0


def test_a_floor_at_or_above_the_ceiling_turns_learning_off() -> None:
    timeout = warmed(0.01, TimeoutPolicy(floor=1.0, ceiling=1.0))
    assert not timeout.learning
    assert timeout.current() == 1.0


@given(st.lists(st.floats(min_value=0.0, max_value=120.0), min_size=1, max_size=200))
def test_whatever_the_answers_the_timeout_stays_between_floor_and_ceiling(
    answers: list[float],
) -> None:
    timeout = AnswerTimeout(POLICY)
    for i, seconds in enumerate(answers):
        if i % 7 == 3:
            timeout.timed_out()
        else:
            timeout.answered(seconds)
        assert POLICY.floor <= timeout.current() <= POLICY.ceiling


def test_answers_lost_together_double_the_wait_once_not_once_each() -> None:
    timeout = warmed()
    given = timeout.current()
    for _ in range(5):  # five requests sent with the same timeout, all lost
        timeout.timed_out(given)
    assert timeout.current() == 6.0
    timeout.timed_out(timeout.current())  # one sent after the doubling, lost too
    assert timeout.current() == 12.0


def test_a_request_is_taken_for_a_straggler_after_the_late_mark_within_bounds() -> None:
    timeout = AnswerTimeout(POLICY)
    assert timeout.patience(0.25, 2.0) == 2.0  # nothing learnt yet
    for _ in range(POLICY.warmup):
        timeout.answered(0.01)
    assert timeout.patience(0.25, 2.0) == 0.25
    for _ in range(50):
        timeout.answered(0.4)
    assert 0.4 <= timeout.patience(0.25, 2.0) < 2.0
    for _ in range(50):
        timeout.answered(5.0)
    assert timeout.patience(0.25, 2.0) == 2.0
