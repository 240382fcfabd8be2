"""The failure breaker: stop submitting when jobs keep failing for a reason retries cannot fix.

It sees only final outcomes: refused submissions and finished jobs. Throttling and 5xx answers
are retried below it and never reach it, so a slow or flaky service cannot trip it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from orchestrator.manifest import Limits

__all__ = ["Breaker", "Trip"]


@dataclass(frozen=True)
class Trip:
    reason: str
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.reason}; most common error {self.code}: {self.message}"


class Breaker:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.finished = 0
        self.failed = 0
        self.codes: Counter[str] = Counter()
        self.messages: dict[str, str] = {}
        self._streak_code: str | None = None
        self._streak = 0
        self.trip: Trip | None = None

    @property
    def tripped(self) -> bool:
        return self.trip is not None

    def success(self) -> None:
        self.finished += 1
        self._streak_code, self._streak = None, 0

    def failure(self, code: str, message: str) -> bool:
        """Count one failed item; return True if this failure trips the breaker."""
        self.finished += 1
        self.failed += 1
        code = code or "Unknown"
        self.codes[code] += 1
        self.messages.setdefault(code, message)
        if code == self._streak_code:
            self._streak += 1
        else:
            self._streak_code, self._streak = code, 1
        if self.trip is None:
            self.trip = self._check(code)
            return self.trip is not None
        return False

    def _check(self, code: str) -> Trip | None:
        limits = self.limits
        if self._streak >= limits.max_consecutive_same_error:
            reason = f"{self._streak} consecutive items failed with {code}"
            return Trip(reason, code, self.messages[code])
        share = 100.0 * self.failed / self.finished
        if self.finished >= limits.min_finished and share > limits.max_failure_percent:
            dominant, _ = self.codes.most_common(1)[0]
            reason = (
                f"{self.failed} of {self.finished} finished items failed ({share:.0f}% > "
                f"max_failure_percent {limits.max_failure_percent:g})"
            )
            return Trip(reason, dominant, self.messages[dominant])
        return None
