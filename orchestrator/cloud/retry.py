"""Every retry in picjobs goes through here: one policy, tenacity underneath, a retry budget.

The first attempt runs without tenacity (its bookkeeping costs more than the request on the
success path); only after a failure worth retrying does tenacity take over. Waits are full
jitter, capped, and never shorter than a Retry-After, except the first retry of a request while
the budget is at least half full: a 503, a 500 or a reset from a service that answers the rest
is noise, and its retry is sent at once (it still waits for a rate slot, so prompt retries
cannot flood). The wait grows only when failures persist: the same request failing again, or
so many failing that the budget is half spent. The budget (a token bucket shared by a
run, as in the AWS SDKs' retry quota) stops an outage from multiplying traffic: a call that
succeeds after retrying gives back what its last retry took, so a steady share of failed
requests that retries get through costs little, while retries that keep failing drain it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from orchestrator import defaults
from orchestrator.exceptions import CIError, Disposition, ReadTimeout

__all__ = ["RETRY_AFTER_MAX", "Retrier", "RetryBudget", "RetryPolicy", "call", "should_retry"]

T = TypeVar("T")
log = logging.getLogger(__name__)
# The longest Retry-After honoured, in seconds: a server asking for more is asked again sooner.
RETRY_AFTER_MAX: Final = 60.0


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one request. `for_tests()` keeps the attempts and drops the waits."""

    attempts: int = defaults.MAX_ATTEMPTS
    wait_initial: float = 0.25
    wait_max: float = 20.0
    timeout: float = 120.0
    retry_after_max: float = RETRY_AFTER_MAX

    @classmethod
    def for_tests(cls, attempts: int = defaults.MAX_ATTEMPTS) -> RetryPolicy:
        return cls(attempts=attempts, wait_initial=0.0, wait_max=0.0, retry_after_max=0.0)


class RetryBudget:
    """A shared allowance of retries: each retry spends tokens, each clean success earns one,
    and a success after retries gives back the cost of its last retry."""

    def __init__(
        self, capacity: int = 500, retry_cost: int = 5, timeout_cost: int = 10, refund: int = 1
    ) -> None:
        self.capacity = capacity
        self.tokens = capacity
        self.retry_cost = retry_cost
        self.timeout_cost = timeout_cost
        self.refund = refund

    @property
    def exhausted(self) -> bool:
        return self.tokens < self.retry_cost

    @property
    def healthy(self) -> bool:
        """Failures are rare enough that a request's first retry need not wait."""
        return self.tokens * 2 >= self.capacity

    def cost(self, exc: CIError) -> int:
        return self.timeout_cost if isinstance(exc, ReadTimeout) else self.retry_cost

    def take(self, exc: CIError) -> bool:
        cost = self.cost(exc)
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True

    def succeeded(self, retry_cost: int = 0) -> None:
        """A call succeeded: `retry_cost` is what its last retry took (0 when it was not retried)."""
        self.tokens = min(self.capacity, self.tokens + (retry_cost or self.refund))


def should_retry(exc: BaseException, *, idempotent: bool) -> bool:
    """Retry what was refused or never sent; an uncertain outcome only for idempotent calls."""
    if not isinstance(exc, CIError):
        return False
    if exc.disposition is Disposition.RETRYABLE:
        return True
    return idempotent and exc.disposition is Disposition.UNKNOWN


def _wait(policy: RetryPolicy, budget: RetryBudget) -> Callable[[RetryCallState], float]:
    jitter = wait_random_exponential(multiplier=policy.wait_initial, max=policy.wait_max)

    def wait(state: RetryCallState) -> float:
        # The budget was charged for this retry already (retry= runs before wait=).
        prompt = state.attempt_number == 1 and budget.healthy
        delay = 0.0 if prompt else jitter(state)
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after:
            delay = max(delay, min(float(retry_after), policy.retry_after_max))
        return delay

    return wait


async def call(
    fn: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    budget: RetryBudget,
    idempotent: bool,
    name: str = "request",
) -> T:
    """Run `fn`, retrying per `policy` while `budget` allows; the last error is re-raised as is."""
    try:
        result = await fn()
    except CIError as exc:
        if policy.attempts <= 1 or not should_retry(exc, idempotent=idempotent):
            raise
        first: CIError | None = exc
    else:
        budget.succeeded()
        return result

    async def replay() -> T:
        nonlocal first
        if first is not None:
            exc, first = first, None
            raise exc
        return await fn()

    last_cost = 0

    def retryable(state: RetryCallState) -> bool:
        nonlocal last_cost
        exc = state.outcome.exception() if state.outcome else None
        if not isinstance(exc, CIError) or not should_retry(exc, idempotent=idempotent):
            return False
        if state.attempt_number >= policy.attempts:
            return False  # out of attempts: no retry follows, so none is paid for
        if not budget.take(exc):
            return False
        last_cost = budget.cost(exc)
        return True

    def note(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.debug("retrying %s in %.2fs after %s", name, wait, exc)

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts) | stop_before_delay(policy.timeout),
        wait=_wait(policy, budget),
        retry=retryable,
        before_sleep=note,
        reraise=True,
    )
    result = await retrying(replay)
    budget.succeeded(last_cost)
    return result


class Retrier:
    """A policy and the budget it spends, together: what every caller of the client retries with.

    Components that share one budget (a run's submitter, tracker and reconciler) share one
    Retrier, so an outage seen by any of them slows all of them.
    """

    def __init__(
        self, policy: RetryPolicy | None = None, budget: RetryBudget | None = None
    ) -> None:
        self.policy = policy or RetryPolicy()
        self.budget = budget or RetryBudget()

    @property
    def exhausted(self) -> bool:
        return self.budget.exhausted

    async def call(
        self, fn: Callable[[], Awaitable[T]], *, idempotent: bool, name: str = "request"
    ) -> T:
        return await call(
            fn, policy=self.policy, budget=self.budget, idempotent=idempotent, name=name
        )
