"""The failure breaker on its own: it counts final outcomes only, so no clock and no server."""

from __future__ import annotations

from orchestrator.engine.breaker import Breaker
from orchestrator.manifest import Limits

LIMITS = Limits(min_finished=10, max_failure_percent=50.0, max_consecutive_same_error=4)


def test_a_fresh_breaker_is_not_tripped() -> None:
    breaker = Breaker(LIMITS)
    assert not breaker.tripped
    assert breaker.trip is None


def test_the_same_error_on_consecutive_items_trips_it_at_the_limit() -> None:
    breaker = Breaker(LIMITS)
    assert [breaker.failure("InvalidArgument", "bad rule") for _ in range(4)] == [
        False,
        False,
        False,
        True,
    ]
    assert breaker.tripped
    assert breaker.trip is not None
    assert breaker.trip.code == "InvalidArgument"
    assert breaker.trip.reason == "4 consecutive items failed with InvalidArgument"
    assert str(breaker.trip) == (
        "4 consecutive items failed with InvalidArgument; "
        "most common error InvalidArgument: bad rule"
    )


def test_a_success_between_failures_restarts_the_streak() -> None:
    breaker = Breaker(LIMITS)
    for _ in range(3):
        breaker.failure("InvalidArgument", "bad rule")
    breaker.success()
    assert [breaker.failure("InvalidArgument", "bad rule") for _ in range(3)] == [False] * 3
    assert not breaker.tripped


def test_a_different_error_restarts_the_streak() -> None:
    breaker = Breaker(LIMITS)
    for code in ("A", "A", "A", "B", "A", "A", "A"):
        assert not breaker.failure(code, f"message {code}")
    assert not breaker.tripped


def test_the_failure_share_trips_it_only_after_the_minimum_number_of_finished_items() -> None:
    breaker = Breaker(LIMITS)
    outcomes = []
    for code in ("A", "B", "A", "B", "A", "B", "A", "B", "A", "B"):  # 100% failed, no streak > 1
        outcomes.append(breaker.failure(code, f"message {code}"))
    assert outcomes == [False] * 9 + [True]
    assert breaker.trip is not None
    reason = "10 of 10 finished items failed (100% > max_failure_percent 50)"
    assert breaker.trip.reason == reason


def test_the_share_trip_names_the_most_common_error_and_its_first_message() -> None:
    breaker = Breaker(LIMITS)
    for _ in range(4):
        breaker.success()
    for code in ("A", "B", "A", "B", "A", "C", "A"):
        breaker.failure(code, f"first {code}" if code not in breaker.codes else "later")
    assert breaker.trip is not None
    assert breaker.trip.reason == "6 of 10 finished items failed (60% > max_failure_percent 50)"
    assert (breaker.trip.code, breaker.trip.message) == ("A", "first A")


def test_a_share_at_the_limit_does_not_trip_it() -> None:
    breaker = Breaker(LIMITS)
    for i in range(10):
        if i % 2:
            breaker.success()
        else:
            breaker.failure(f"E{i}", "x")
    assert breaker.finished == 10
    assert breaker.failed == 5
    assert not breaker.tripped


def test_it_trips_once_and_later_failures_do_not_report_a_new_trip() -> None:
    breaker = Breaker(LIMITS)
    results = [breaker.failure("A", "m") for _ in range(6)]
    assert results == [False, False, False, True, False, False]
    assert breaker.trip is not None
    assert breaker.trip.reason == "4 consecutive items failed with A"
    assert breaker.failed == 6


def test_a_failure_without_a_code_counts_as_unknown() -> None:
    breaker = Breaker(LIMITS)
    for _ in range(4):
        breaker.failure("", "connection reset")
    assert breaker.trip is not None
    assert breaker.trip.code == "Unknown"
    assert breaker.codes["Unknown"] == 4
