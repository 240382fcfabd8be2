"""`picjobs cancel`: cancel the jobs of a manifest that CI has not started, and record it.

CI only cancels jobs that have not started (`PUT /jobs/<id>?cancel`). So the outstanding jobs
of the ledger are described in batches first: those CI reports as Submitted (or Pause, held
by a paused queue) are cancelled and recorded as cancelled; Running ones are left to finish and
the next `run` follows them; ones that finished meanwhile get their final state recorded. A
cancel that CI refuses or whose answer is lost is settled by describing the job again, never
by guessing. Pending items (planned, never sent) are only touched with `--pending`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import click

from orchestrator.cli._common import (
    common_options,
    errors,
    ledger_option,
    load,
    make_client,
    manifest_argument,
    open_endpoint,
    setup_logging,
)
from orchestrator.cloud import retry
from orchestrator.cloud.client import CIClient
from orchestrator.cloud.models import DescribeResult
from orchestrator.engine.tracker import job_update
from orchestrator.exceptions import CIError, UsageError
from orchestrator.ledger import JobUpdate, Ledger, State
from orchestrator.manifest import Manifest

__all__ = ["CancelReport", "cancel_command", "cancel_outstanding"]

log = logging.getLogger(__name__)

BATCH = 50
UNSTARTED = frozenset({"Submitted", "Pause"})
MESSAGE = "cancelled with picjobs cancel"
EXIT_OK, EXIT_ERRORS = 0, 1


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
    def exit_code(self) -> int:
        return EXIT_ERRORS if self.errors else EXIT_OK

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
    def __init__(self, client: CIClient, ledger: Ledger, policy: retry.RetryPolicy) -> None:
        self.client = client
        self.ledger = ledger
        self.policy = policy
        self.budget = retry.RetryBudget()
        self.report = CancelReport()

    async def _describe(self, ids: Sequence[str]) -> DescribeResult | None:
        try:
            return await retry.call(
                lambda: self.client.describe(ids),
                policy=self.policy,
                budget=self.budget,
                idempotent=True,
                name="describe",
            )
        except CIError as exc:
            log.warning("describing %d jobs failed: %s", len(ids), exc)
            self.report.errors += len(ids)
            return None

    async def _cancel(self, job_id: str) -> CIError | None:
        # Not retried on an unknown outcome: describing the job afterwards tells what happened.
        try:
            await retry.call(
                lambda: self.client.cancel(job_id),
                policy=self.policy,
                budget=self.budget,
                idempotent=False,
                name="cancel",
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
            if job.state == "Cancel":
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
    policy: retry.RetryPolicy | None = None,
    batch: int = BATCH,
) -> CancelReport:
    """Cancel every outstanding job of the ledger that CI has not started; record what is known."""
    canceller = _Canceller(client, ledger, policy or retry.RetryPolicy())
    after = 0
    # Recorded items leave the outstanding set; paging by rowid keeps the walk stable anyway.
    while page := ledger.outstanding_job_ids(batch, after):
        after = page[-1][0]
        await canceller.batch([job_id for _, job_id in page])
    return canceller.report


async def _cancel_with_ci(manifest: Manifest, ledger: Ledger) -> CancelReport:
    async with (
        open_endpoint(manifest) as (endpoint, creds),
        make_client(manifest, endpoint, creds) as client,
    ):
        return await cancel_outstanding(ledger, client)


@click.command("cancel")
@manifest_argument
@ledger_option
@click.option(
    "--pending",
    is_flag=True,
    help="Also cancel the items not submitted yet, so that no later run submits them.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@common_options
def cancel_command(
    manifest_path: str,
    ledger: str | None,
    pending: bool,
    as_json: bool,
    quiet: bool,
    log_format: str,
) -> None:
    """Cancel the jobs of MANIFEST that CI has not started yet, and record them as cancelled.

    Jobs already running cannot be cancelled; they finish, and the next run records them.
    Items never submitted stay pending (the next run submits them) unless --pending is given.

    \b
    Exit codes: 0 done, 1 some jobs could not be described or cancelled (run again),
    2 usage or manifest error, 3 a run holds the ledger.
    """
    setup_logging(quiet, log_format)
    with errors():
        manifest = load(manifest_path, ledger)
        if not manifest.ledger_path.exists():
            raise UsageError(f"{manifest.ledger_path}: no ledger yet; run the manifest first")
        with Ledger.open(manifest.ledger_path, synchronous=manifest.ledger_sync) as db:
            db.lock()
            if db.outstanding_count():
                report = asyncio.run(_cancel_with_ci(manifest, db))
            else:
                report = CancelReport()
            if pending:
                report.pending_cancelled = db.cancel_pending(MESSAGE)
            counts = db.counts()
            report.pending = counts["pending"]
            report.unsettled = counts["unknown"] + counts["submitting"]
    if as_json:
        click.echo(
            json.dumps(
                {"manifest": manifest.name, **asdict(report), "exit_code": report.exit_code},
                indent=2,
            )
        )
    else:
        click.echo(report.summary(manifest.name))
    sys.exit(report.exit_code)
