"""Cancelling the jobs of a ledger that CI has not started, and recording it.

CI only cancels jobs that have not started (`PUT /jobs/<id>?cancel`). So the outstanding jobs
of the ledger are described in batches first: those CI reports as Submitted (or Pause, held
by a paused queue) are cancelled and recorded as cancelled; Running ones are left to finish and
the next `run` follows them; ones that finished meanwhile get their final state recorded. A
cancel that CI refuses or whose answer is lost is settled by describing the job again, never
by guessing. Pending items (planned, never sent) are only touched when asked.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from orchestrator.cloud.client import CIClient
from orchestrator.cloud.models import DescribeResult, JobState
from orchestrator.cloud.retry import Retrier
from orchestrator.engine.tracker import job_update
from orchestrator.exceptions import CIError
from orchestrator.exit_codes import ExitCode
from orchestrator.ledger import JobUpdate, Ledger, State

__all__ = ["MESSAGE", "CancelReport", "cancel", "cancel_outstanding"]

log = logging.getLogger(__name__)

BATCH = 50
UNSTARTED = frozenset({JobState.SUBMITTED, JobState.PAUSE})
MESSAGE = "cancelled with picjobs cancel"


@dataclass
class CancelReport:
    """What happened to the outstanding jobs, and to the items that were never sent."""

    cancelled: int = 0  # CI cancelled them; recorded as cancelled
    running: int = 0  # already started: cannot be cancelled, left to finish
    final: int = 0  # finished before we got to them; their final state recorded
    missing: int = 0  # CI does not know them; left for the run's tracker
    errors: int = 0  # could not be described or cancelled; still outstanding
    pending_cancelled: int = 0
    pending: int = 0  # never sent and left alone (no --pending)
    unsettled: int = 0  # submissions of unknown outcome, left for the next run to settle

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.FAILED if self.errors else ExitCode.OK

    def summary(self, name: str) -> str:
        parts = [
            f"cancelled {self.cancelled}",
            f"already running {self.running}",
            f"already final {self.final}",
        ]
        if self.missing:
            parts.append(f"unknown to CI {self.missing}")
        if self.errors:
            parts.append(f"errors {self.errors} (still outstanding; run cancel again)")
        if self.pending_cancelled:
            parts.append(f"pending cancelled {self.pending_cancelled}")
        if self.pending:
            parts.append(f"pending {self.pending} not touched (--pending cancels them)")
        if self.unsettled:
            parts.append(f"unknown outcome {self.unsettled} (the next run settles them)")
        return f"{name}: {', '.join(parts)}"


class _Canceller:
    def __init__(self, client: CIClient, ledger: Ledger, retrier: Retrier) -> None:
        self.client = client
        self.ledger = ledger
        self.retrier = retrier
        self.report = CancelReport()

    async def _describe(self, ids: Sequence[str]) -> DescribeResult | None:
        try:
            return await self.retrier.call(
                lambda: self.client.describe(ids), idempotent=True, name="describe"
            )
        except CIError as exc:
            log.warning("describing %d jobs failed: %s", len(ids), exc)
            self.report.errors += len(ids)
            return None

    async def _cancel(self, job_id: str) -> CIError | None:
        # Not retried on an unknown outcome: describing the job afterwards tells what happened.
        try:
            await self.retrier.call(
                lambda: self.client.cancel(job_id), idempotent=False, name="cancel"
            )
        except CIError as exc:
            return exc
        return None

    def _record(self, updates: Iterable[JobUpdate]) -> None:
        updates = list(updates)
        if updates:
            self.ledger.record_states(updates)

    async def batch(self, ids: Sequence[str]) -> None:
        described = await self._describe(ids)
        if described is None:
            return
        self.report.missing += len(described.missing)
        finished = [job for job in described.jobs if job.final]
        self.report.final += len(finished)
        self._record(job_update(job) for job in finished)
        unstarted = [job.job_id for job in described.jobs if job.state in UNSTARTED]
        self.report.running += len(described.jobs) - len(finished) - len(unstarted)
        outcomes = await asyncio.gather(*(self._cancel(job_id) for job_id in unstarted))
        done = [job_id for job_id, error in zip(unstarted, outcomes, strict=True) if error is None]
        self._record(JobUpdate(job_id, State.CANCELLED, message=MESSAGE) for job_id in done)
        self.report.cancelled += len(done)
        refused = {
            job_id: error
            for job_id, error in zip(unstarted, outcomes, strict=True)
            if error is not None
        }
        if refused:
            await self._recheck(refused)

    async def _recheck(self, refused: dict[str, CIError]) -> None:
        """Settle cancels that failed: the job may have started, or been cancelled after all."""
        described = await self._describe(list(refused))
        if described is None:
            return
        self.report.missing += len(described.missing)
        for job in described.jobs:
            if job.state == JobState.CANCEL:
                self._record([JobUpdate(job.job_id, State.CANCELLED, message=MESSAGE)])
                self.report.cancelled += 1
            elif job.final:
                self._record([job_update(job)])
                self.report.final += 1
            elif job.state in UNSTARTED:
                log.warning("cancelling %s failed: %s", job.job_id, refused[job.job_id])
                self.report.errors += 1
            else:
                self.report.running += 1


async def cancel_outstanding(
    ledger: Ledger,
    client: CIClient,
    *,
    retrier: Retrier | None = None,
    batch: int = BATCH,
) -> CancelReport:
    """Cancel every outstanding job of the ledger that CI has not started; record what is known."""
    canceller = _Canceller(client, ledger, retrier or Retrier())
    after = 0
    # Recorded items leave the outstanding set; paging by rowid keeps the walk stable anyway.
    while page := ledger.outstanding_job_ids(batch, after):
        after = page[-1][0]
        await canceller.batch([job_id for _, job_id in page])
    return canceller.report


async def cancel(
    ledger: Ledger,
    connect: Callable[[], AbstractAsyncContextManager[CIClient]],
    *,
    pending: bool = False,
    retrier: Retrier | None = None,
) -> CancelReport:
    """`picjobs cancel` on a locked ledger: cancel what CI has not started (connecting only when
    something is outstanding), with `pending` the items never sent too, and count what is left."""
    report = CancelReport()
    if ledger.outstanding_count():
        async with connect() as client:
            report = await cancel_outstanding(ledger, client, retrier=retrier)
    if pending:
        report.pending_cancelled = ledger.cancel_pending(MESSAGE)
    counts = ledger.counts()
    report.pending = counts[State.PENDING]
    report.unsettled = counts[State.UNKNOWN] + counts[State.SUBMITTING]
    return report
