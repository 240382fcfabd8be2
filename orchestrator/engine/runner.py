"""One `picjobs run`: expand the manifest into the ledger, then submit and track to final states."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from orchestrator.ci.client import CIClient
from orchestrator.ci.models import Queue
from orchestrator.config import Manifest
from orchestrator.engine import retry
from orchestrator.engine.expand import Expansion, expand
from orchestrator.engine.flow import Outstanding
from orchestrator.engine.reconcile import Reconciler
from orchestrator.engine.submitter import JobTemplate, Submitter
from orchestrator.engine.tracker import Tracker
from orchestrator.exceptions import UsageError
from orchestrator.ledger import Ledger

__all__ = ["EXIT_FAILED", "EXIT_INCOMPLETE", "EXIT_OK", "RunOptions", "RunReport", "run"]

log = logging.getLogger(__name__)

EXIT_OK, EXIT_FAILED, EXIT_INCOMPLETE = 0, 1, 75


@dataclass(frozen=True)
class RunOptions:
    no_wait: bool = False
    resume_queue: bool = False
    policy: retry.RetryPolicy = field(default_factory=retry.RetryPolicy)
    poll_min: float = 0.5
    poll_max: float = 30.0
    queue_fill: float = 0.9
    progress_every: float = 5.0


@dataclass
class RunReport:
    exit_code: int
    counts: dict[str, int]
    expansion: Expansion
    submitted: int = 0
    adopted: int = 0
    seconds: float = 0.0
    message: str = ""
    requests: dict[str, int] = field(default_factory=dict)


async def resolve_queue(client: CIClient, manifest: Manifest, resume: bool) -> Queue:
    """The manifest's queue, or the first Active pic queue; a Paused one only with `resume`."""
    wanted = manifest.target.queue_id
    if wanted:
        page = await client.queues_page(queue_ids=[wanted])
        queue = next((q for q in page.queues if q.queue_id == wanted), None)
        if queue is None:
            raise UsageError(f"{manifest.path}: [target] queue_id {wanted!r} does not exist")
    else:
        queues = await client.list_queues()
        if not queues:
            raise UsageError(f"bucket {manifest.target.bucket!r} has no pic queue")
        queue = next((q for q in queues if q.state == "Active"), queues[0])
    if queue.state == "Paused":
        if not resume:
            raise UsageError(
                f"queue {queue.queue_id} is Paused; resume it in the console or run again "
                "with --resume-queue"
            )
        queue = await client.update_queue(
            queue.queue_id, name=queue.name, state="Active", notify=queue.notify or None
        )
        log.info("resumed queue %s", queue.queue_id)
    return queue


def _exit_code(counts: dict[str, int]) -> int:
    if any(counts[s] for s in ("pending", "submitting", "unknown", "submitted")):
        return EXIT_INCOMPLETE
    return EXIT_FAILED if counts.get("failed", 0) or counts.get("cancelled", 0) else EXIT_OK


async def run(
    manifest: Manifest,
    ledger: Ledger,
    client: CIClient,
    options: RunOptions,
    *,
    stop: asyncio.Event | None = None,
    progress: Callable[[str], None] | None = None,
) -> RunReport:
    started = time.monotonic()
    stop = stop or asyncio.Event()
    run_id = ledger.start_run(os.getpid(), socket.gethostname(), {"manifest": str(manifest.path)})
    recovered = ledger.recover_interrupted()
    if recovered:
        log.info("%d submissions of an interrupted run have an unknown outcome", recovered)

    expansion = await expand(manifest, client, ledger.add_items)
    log.info(
        "expanded: %d objects listed, %d matched, %d new",
        expansion.seen,
        expansion.matched,
        expansion.added,
    )
    counts = ledger.counts()
    work = sum(counts[s] for s in ("pending", "submitting", "unknown", "submitted"))
    report = RunReport(EXIT_OK, counts, expansion)
    if work:
        await _process(manifest, ledger, client, options, stop, progress, report)
    report.counts = ledger.counts()
    report.exit_code = _exit_code(report.counts)
    report.seconds = time.monotonic() - started
    report.requests = dict(client.requests)
    ledger.finish_run(run_id, report.exit_code, report.counts)
    return report


async def _process(
    manifest: Manifest,
    ledger: Ledger,
    client: CIClient,
    options: RunOptions,
    stop: asyncio.Event,
    progress: Callable[[str], None] | None,
    report: RunReport,
) -> None:
    queue = await resolve_queue(client, manifest, options.resume_queue)
    job = manifest.job
    template = JobTemplate(
        queue_id=queue.queue_id,
        template_id=job.template_id,
        process_rule=job.process_rule,
        is_pic_info=job.is_pic_info,
        callback=job.callback,
        callback_format=job.callback_format,
        callback_type=job.callback_type,
    )
    budget = retry.RetryBudget()
    cap = int((queue.max_size or 10000) * options.queue_fill)
    outstanding = Outstanding(cap, ledger.outstanding_count())
    limits = manifest.limits
    submitter = Submitter(
        client,
        ledger,
        template,
        outstanding,
        policy=options.policy,
        budget=budget,
        concurrency=limits.concurrency,
    )
    tracker = Tracker(
        client,
        ledger,
        outstanding,
        policy=options.policy,
        budget=budget,
        poll_min=options.poll_min,
        poll_max=options.poll_max,
    )
    reconciler = Reconciler(client, ledger, queue.queue_id, policy=options.policy, budget=budget)
    submitting = asyncio.Event()
    submitting.set()
    tracking = None if options.no_wait else asyncio.create_task(tracker.run(submitting, stop))
    reporter = asyncio.create_task(_report_progress(ledger, options.progress_every, progress))
    try:
        await _settle(ledger, reconciler)
        while not stop.is_set():
            await submitter.run(stop)
            tracker.wake()
            await _settle(ledger, reconciler)
            if budget.exhausted:
                error = submitter.stats.last_error
                report.message = f"stopped submitting: CI kept refusing requests ({error})"
                log.error(report.message)
                break
            if ledger.pending_count() == 0:
                break
        submitting.clear()
        if tracking is not None:
            await tracking
    finally:
        submitting.clear()
        reporter.cancel()
        if tracking is not None and not tracking.done():
            tracking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tracking
    report.submitted = submitter.stats.submitted
    report.adopted = reconciler.adopted


async def _settle(ledger: Ledger, reconciler: Reconciler) -> None:
    since = ledger.unknown_since()
    if since is not None:
        await reconciler.settle(since, datetime.now(UTC))


async def _report_progress(
    ledger: Ledger, every: float, progress: Callable[[str], None] | None
) -> None:
    if progress is None:
        return
    last_done, last_time = None, time.monotonic()
    while True:
        await asyncio.sleep(every)
        counts = ledger.counts()
        total = sum(counts.values())
        done = counts["success"] + counts["failed"] + counts["cancelled"]
        now = time.monotonic()
        rate = 0.0 if last_done is None else (done - last_done) / max(now - last_time, 1e-9)
        eta = f", ETA {int((total - done) / rate)}s" if rate > 0 else ""
        busy = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
        progress(f"{done}/{total} final ({busy}), {rate:.1f} jobs/s{eta}")
        last_done, last_time = done, now
