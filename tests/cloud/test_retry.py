"""The retry policy: what is retried, how often, and how the budget stops a storm."""

from __future__ import annotations

import pytest

from orchestrator.cloud.retry import Retrier, RetryBudget, RetryPolicy, call
from orchestrator.exceptions import CIError, ConnectError, DisconnectError, ServiceError

POLICY = RetryPolicy.for_tests(attempts=4)


class Script:
    """A fake request that fails with the scripted errors, then succeeds."""

    def __init__(self, *errors: CIError) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def slow_down() -> ServiceError:
    return ServiceError(429, "SlowDown", "slow")


async def test_throttling_and_unavailability_are_retried_until_success() -> None:
    fn = Script(slow_down(), ServiceError(503, "ServiceUnavailable", ""), ConnectError("refused"))
    assert await call(fn, policy=POLICY, budget=RetryBudget(), idempotent=False) == "ok"
    assert fn.calls == 4


async def test_a_permanent_error_is_raised_after_one_attempt() -> None:
    fn = Script(ServiceError(400, "InvalidArgument", "bad"))
    with pytest.raises(ServiceError, match="InvalidArgument"):
        await call(fn, policy=POLICY, budget=RetryBudget(), idempotent=True)
    assert fn.calls == 1


async def test_an_unknown_outcome_is_not_resent_for_a_non_idempotent_call() -> None:
    fn = Script(DisconnectError("lost"), ServiceError(500, "InternalError", ""))
    with pytest.raises(DisconnectError):
        await call(fn, policy=POLICY, budget=RetryBudget(), idempotent=False)
    assert fn.calls == 1


async def test_an_unknown_outcome_is_retried_for_an_idempotent_call() -> None:
    fn = Script(DisconnectError("lost"), ServiceError(500, "InternalError", ""))
    assert await call(fn, policy=POLICY, budget=RetryBudget(), idempotent=True) == "ok"
    assert fn.calls == 3


async def test_attempts_are_capped_and_the_last_error_is_re_raised_unchanged() -> None:
    errors = [slow_down() for _ in range(10)]
    fn = Script(*errors)
    with pytest.raises(ServiceError) as info:
        await call(fn, policy=POLICY, budget=RetryBudget(), idempotent=False)
    assert fn.calls == 4
    assert info.value is errors[3]


async def test_an_exhausted_budget_stops_retrying_at_once() -> None:
    budget = RetryBudget(capacity=10, retry_cost=5)
    fn = Script(*[slow_down() for _ in range(10)])
    with pytest.raises(ServiceError):
        await call(fn, policy=POLICY, budget=budget, idempotent=False)
    assert fn.calls == 3  # the first attempt, then two retries paid for
    assert budget.exhausted


async def test_clean_successes_refill_the_budget() -> None:
    budget = RetryBudget(capacity=10, retry_cost=5)
    budget.tokens = 0
    for _ in range(5):
        await call(Script(), policy=POLICY, budget=budget, idempotent=False)
    assert budget.tokens == 5


async def test_retry_after_sets_a_floor_under_the_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr("asyncio.sleep", fake_sleep)
    policy = RetryPolicy(attempts=2, wait_initial=0.01, wait_max=0.02)
    err = ServiceError(429, "SlowDown", "", retry_after=7.0)
    assert await call(Script(err), policy=policy, budget=RetryBudget(), idempotent=False) == "ok"
    assert slept == [7.0]


async def test_calls_through_one_retrier_share_its_budget() -> None:
    retrier = Retrier(POLICY, RetryBudget(capacity=10, retry_cost=5))
    first, second = Script(*[slow_down() for _ in range(3)]), Script(slow_down())
    with pytest.raises(ServiceError):
        await retrier.call(first, idempotent=False, name="first")
    with pytest.raises(ServiceError):
        await retrier.call(second, idempotent=False, name="second")
    assert (first.calls, second.calls) == (3, 1)  # the first spent what the second needed
    assert retrier.exhausted


async def test_a_retrier_without_arguments_uses_the_default_policy_and_a_fresh_budget() -> None:
    retrier = Retrier()
    assert (retrier.policy, retrier.budget.tokens) == (RetryPolicy(), RetryBudget().capacity)


def recording_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr("asyncio.sleep", fake_sleep)
    return slept


@pytest.mark.parametrize(
    "error",
    [
        ServiceError(503, "ServiceUnavailable", "busy"),
        ServiceError(500, "InternalError", "oops"),
        DisconnectError("reset"),
        slow_down(),
    ],
    ids=["503", "500", "reset", "429"],
)
async def test_a_healthy_service_s_passing_error_is_retried_at_once_and_a_second_one_waits(
    monkeypatch: pytest.MonkeyPatch, error: CIError
) -> None:
    slept = recording_sleep(monkeypatch)
    policy = RetryPolicy(attempts=3, wait_initial=1.0, wait_max=8.0)

    result = await call(Script(error, error), policy=policy, budget=RetryBudget(), idempotent=True)

    assert result == "ok"
    assert slept[0] == 0.0
    assert len(slept) == 2


async def test_once_half_the_budget_is_spent_even_a_first_retry_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept = recording_sleep(monkeypatch)
    policy = RetryPolicy(attempts=2, wait_initial=1.0, wait_max=8.0)
    budget = RetryBudget(capacity=100, retry_cost=5)
    budget.tokens = 54  # below half once this retry's 5 are taken

    monkeypatch.setattr("random.uniform", lambda low, high: high)  # the jitter's longest wait
    assert await call(Script(slow_down()), policy=policy, budget=budget, idempotent=False) == "ok"

    assert slept == [1.0]


async def test_a_retry_after_is_honoured_even_for_a_prompt_first_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept = recording_sleep(monkeypatch)
    policy = RetryPolicy(attempts=2, wait_initial=1.0, wait_max=8.0)
    err = ServiceError(503, "ServiceUnavailable", "", retry_after=2.0)

    assert await call(Script(err), policy=policy, budget=RetryBudget(), idempotent=False) == "ok"

    assert slept == [2.0]
