"""The ledger's vocabulary: the state of an item, and what its attempts log records."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Final

__all__ = [
    "CANCELLED",
    "FAILED",
    "FINAL_STATES",
    "PENDING",
    "SKIPPED",
    "SUBMITTED",
    "SUBMITTING",
    "SUCCESS",
    "UNKNOWN",
    "Outcome",
    "State",
    "sql_list",
]


class State(enum.StrEnum):
    PENDING = "pending"  # planned, safe to send
    SUBMITTING = "submitting"  # intent committed: a POST may be in flight
    UNKNOWN = "unknown"  # a POST's outcome is unknown: reconcile before any resend
    SUBMITTED = "submitted"  # has a JobId, not final
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"  # final without a job: its output already existed (skip_existing)


PENDING: Final = State.PENDING
SUBMITTING: Final = State.SUBMITTING
UNKNOWN: Final = State.UNKNOWN
SUBMITTED: Final = State.SUBMITTED
SUCCESS: Final = State.SUCCESS
FAILED: Final = State.FAILED
CANCELLED: Final = State.CANCELLED
SKIPPED: Final = State.SKIPPED
FINAL_STATES: Final = frozenset({SUCCESS, FAILED, CANCELLED, SKIPPED})


class Outcome(enum.StrEnum):
    """An attempts_log row's outcome: the state its item entered, or a move back out of one."""

    SUBMITTED = State.SUBMITTED.value
    UNKNOWN = State.UNKNOWN.value
    SUCCESS = State.SUCCESS.value
    FAILED = State.FAILED.value
    CANCELLED = State.CANCELLED.value
    SKIPPED = State.SKIPPED.value
    ADOPTED = "adopted"  # reconciliation found the job of an unknown item
    RELEASED = "released"  # back to pending: the request never took effect


def sql_list(states: Iterable[State]) -> str:
    """`states` as an SQL list of literals, `('a', 'b')`, in enum order for stable SQL text."""
    chosen = set(states)
    return "(" + ", ".join(f"'{state}'" for state in State if state in chosen) + ")"
