"""How long to wait for a CI answer: learnt from the answers, as TCP learns its retransmission
timeout (RFC 6298), between a floor and the configured read timeout.

A CI call (submit, describe, list) is answered in milliseconds to a second. An answer lost on the
way back is only noticed when the read timeout expires, and everything behind that request (the
reconciliation of a submission, the retry of a describe) waits as long. With a fixed 30 s timeout a
few percent of lost answers make a night several times longer than its work; with a timeout a few
times the answers' own spread, a lost answer costs about what its retry costs.

The estimate is srtt + 4 × rttvar over the answers' times to their headers, never below `floor`
(a healthy service's slowest answers must not become timeouts) nor above `ceiling`. Until
`warmup` answers have been seen the ceiling applies: nothing is known yet. Each timeout doubles
the estimate (up to the ceiling) until the next answer, so a service that slows down as a whole
is waited for longer at once rather than timed out request after request; a request that was
given a shorter timeout than the current one (sent before the last doubling) does not double it
again, so that a few answers lost at the same moment do not stretch the wait to the ceiling.

Alternatives weighed: a fixed short timeout (wrong for a slow region or a congested link, and
nothing tells the user); a percentile of a sliding window (needs a sort or a sketch per update
for no better result at these sample counts); hedged requests (a second POST may create a second
job: CI has no idempotency token).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AnswerTimeout", "TimeoutPolicy"]


@dataclass(frozen=True)
class TimeoutPolicy:
    """`floor` and `ceiling` bound the read timeout of a CI call (s); `warmup` answers are
    needed before it is learnt. `floor >= ceiling` turns learning off: the ceiling applies."""

    floor: float = 3.0
    ceiling: float = 30.0
    warmup: int = 16


class AnswerTimeout:
    """The read timeout for the next CI request, from the times of the answers before it."""

    ALPHA = 1 / 8  # RFC 6298's gains
    BETA = 1 / 4

    def __init__(self, policy: TimeoutPolicy) -> None:
        self.policy = policy
        self.samples = 0
        self.srtt = 0.0
        self.rttvar = 0.0
        self._backoff = 1.0
        self._current = policy.ceiling

    @property
    def learning(self) -> bool:
        return self.policy.floor < self.policy.ceiling

    def current(self) -> float:
        """The read timeout to give the next request, in seconds."""
        return self._current

    def patience(self, floor: float, ceiling: float) -> float:
        """How long an answer may take before its request is taken for a straggler (its answer
        lost, most likely): what the answers so far say is late (srtt + 4 × rttvar), between
        `floor` and `ceiling`; the ceiling until `warmup` answers have been seen or when not
        learning. Taking a slow answer for a straggler costs little: a submission's worker
        moves on while its request goes on, a read is sent once more."""
        if not self.learning or self.samples < self.policy.warmup:
            return ceiling
        return min(ceiling, max(floor, self.srtt + 4 * self.rttvar))

    def answered(self, seconds: float) -> None:
        """An answer's headers came `seconds` after its request was sent."""
        if not self.learning:
            return
        if self.samples == 0:
            self.srtt, self.rttvar = seconds, seconds / 2
        else:
            self.rttvar += self.BETA * (abs(self.srtt - seconds) - self.rttvar)
            self.srtt += self.ALPHA * (seconds - self.srtt)
        self.samples += 1
        self._backoff = 1.0
        self._update()

    def timed_out(self, given: float | None = None) -> None:
        """A request got no answer within its timeout (`given`, if known). One given less than
        the current timeout was sent before the last doubling, which already answered it:
        requests lost together (a burst of lost answers) double the wait once, not each."""
        if not self.learning or self.samples < self.policy.warmup:
            return
        if given is not None and given + 0.05 < self._current:  # timeouts are rounded to 0.1 s
            return
        self._backoff = min(self._backoff * 2, self.policy.ceiling / self.policy.floor)
        self._update()

    def _update(self) -> None:
        p = self.policy
        if self.samples < p.warmup:
            self._current = p.ceiling
            return
        learnt = max(p.floor, self.srtt + 4 * self.rttvar) * self._backoff
        self._current = min(p.ceiling, learnt)
