"""The SQLite ledger: one row per planned item, its state, and the history of every attempt.

`Ledger` is put together from one part per concern: `store` (the file, `atomic()`, the run
lock), `loading` (planned items in), `transitions` (claims and CI's answers), `queries`,
`runs`, `jobs` (items by the manifest job that planned them) and `outputs` (existing outputs, for
skip_existing). Every write happens inside `atomic()`, and every sqlite3 or OS error becomes a
`LedgerError` naming the file (`errors`), so callers never see a foreign exception.
"""

from __future__ import annotations

from orchestrator.ledger.jobs import Jobs
from orchestrator.ledger.loading import Loader, Loading
from orchestrator.ledger.lock import LockInfo
from orchestrator.ledger.outputs import OutputRow, Outputs, SkipRule
from orchestrator.ledger.queries import ItemRow, Queries
from orchestrator.ledger.runs import Run, Runs
from orchestrator.ledger.schema import SCHEMA_VERSION
from orchestrator.ledger.states import (
    CANCELLED,
    FAILED,
    FINAL_STATES,
    PENDING,
    SUBMITTED,
    SUBMITTING,
    SUCCESS,
    UNKNOWN,
    Outcome,
    State,
)
from orchestrator.ledger.transitions import ClaimedItem, JobUpdate, Outcomes, Transitions

__all__ = [
    "CANCELLED",
    "FAILED",
    "FINAL_STATES",
    "PENDING",
    "SCHEMA_VERSION",
    "SUBMITTED",
    "SUBMITTING",
    "SUCCESS",
    "UNKNOWN",
    "ClaimedItem",
    "ItemRow",
    "JobUpdate",
    "Ledger",
    "Loader",
    "LockInfo",
    "Outcome",
    "Outcomes",
    "OutputRow",
    "Run",
    "SkipRule",
    "State",
]


class Ledger(Loading, Transitions, Queries, Runs, Jobs, Outputs):
    """A picjobs ledger. Use it from one thread at a time."""
