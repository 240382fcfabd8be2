"""One `picjobs run`: expand the manifest into the ledger, then submit and track to final states."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from orchestrator.cloud import retry
from orchestrator.cloud.client import CIClient
from orchestrator.cloud.models import JobDetail, Queue
from orchestrator.engine.breaker import Breaker, Trip
from orchestrator.engine.expand import Expansion, expand
from orchestrator.engine.flow import Outstanding
from orchestrator.engine.reconcile import Reconciler
from orchestrator.engine.submitter import JobTemplate, Submitter
from orchestrator.engine.tracker import Tracker
from orchestrator.exceptions import UsageError
from orchestrator.ledger import Ledger
from orchestrator.manifest import Manifest

__all__ = [
    "EXIT_FAILED",
    "EXIT_INCOMPLETE",
    "EXIT_OK",
    "EXIT_TRIPPED",
    "Progress",
    "RunOptions",
    "RunReport",
    "run",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

EXIT_OK, EXIT_FAILED, EXIT_TRIPPED, EXIT_INCOMPLETE = 0, 1, 4, 75


@dataclass(frozen=True)
class RunOptions:
    no_wait: bool = False
    resume_queue: bool = False
    retry_failed: bool = False
    deadline: float | None = None  # seconds after the run starts: stop submitting
    grace: float = 300.0  # seconds to keep tracking after the deadline
    policy: retry.RetryPolicy = field(default_factory=retry.RetryPolicy)
    poll_min: float = 0.5
    poll_max: float = 30.0
    queue_fill: float = 0.9
    progress_every: float = 5.0


@dataclass(frozen=True)
class Progress:
    """A snapshot for progress displays: counts per state, throughput over the last minute."""

    counts: dict[str, int]
    total: int
    done: int
    rate: float  # items reaching a final state per second
    eta: float | None  # seconds, at that rate

    def as_dict(self) -> dict[str, object]:
        return {"done": self.done, "total": self.total, "rate": round(self.rate, 2),
                "eta_seconds": None if self.eta is None else round(self.eta)}  # fmt: skip


@dataclass
class RunReport:
    exit_code: int
    counts: dict[str, int]
    expansion: Expansion
    submitted: int = 0
    adopted: int = 0
    retried: int = 0
    seconds: float = 0.0
    message: str = ""
    trip: Trip | None = None
    deadline_reached: bool = False
    requests: dict[str, int] = field(default_factory=dict)


async def resolve_queue(
    client: CIClient,
    manifest: Manifest,
    resume: bool,
    policy: retry.RetryPolicy | None = None,
    budget: retry.RetryBudget | None = None,
) -> Queue:
    """The manifest's queue, or the first Active pic queue; a Paused one only with `resume`."""
    policy = policy or retry.RetryPolicy()
    budget = budget or retry.RetryBudget()

    async def retrying(fn: Callable[[], Awaitable[T]], name: str) -> T:
        return await retry.call(fn, policy=policy, budget=budget, idempotent=True, name=name)

    wanted = manifest.target.queue_id
    if wanted:
        page = await retrying(lambda: client.queues_page(queue_ids=[wanted]), "describe queue")
        queue = next((q for q in page.queues if q.queue_id == wanted), None)
        if queue is None:
            raise UsageError(f"{manifest.path}: [target] queue_id {wanted!r} does not exist")
    else:
        queues = await retrying(client.list_queues, "list queues")
        if not queues:
            raise UsageError(f"bucket {manifest.target.bucket!r} has no pic queue")
        queue = next((q for q in queues if q.state == "Active"), queues[0])
    if queue.state == "Paused":
        if not resume:
            raise UsageError(
                f"queue {queue.queue_id} is Paused; resume it in the console or run again "
                "with --resume-queue"
            )
        paused = queue
        queue = await retrying(
            lambda: client.update_queue(
                paused.queue_id, name=paused.name, state="Active", notify=paused.kept_notify()
            ),
            "resume queue",
        )
        log.info("resumed queue %s", queue.queue_id)
    return queue


def _exit_code(counts: dict[str, int], trip: Trip | None) -> int:
    if trip is not None:
        return EXIT_TRIPPED
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
    progress: Callable[[Progress], None] | None = None,
) -> RunReport:
    started = time.monotonic()
    stop = stop or asyncio.Event()
    # Expansion first: a source that cannot be read must leave the ledger as it was.
    expansion = await _expand(manifest, ledger, client, options.policy)
    run_id = ledger.start_run(os.getpid(), socket.gethostname(), {"manifest": str(manifest.path)})
    recovered = ledger.recover_interrupted()
    if recovered:
        log.info("%d submissions of an interrupted run have an unknown outcome", recovered)
    report = RunReport(EXIT_OK, ledger.counts(), expansion)
    if options.retry_failed:
        report.retried = ledger.retry_failed()
        log.info("%d failed items queued again", report.retried)
    counts = ledger.counts()
    work = sum(counts[s] for s in ("pending", "submitting", "unknown", "submitted"))
    if work and not stop.is_set():
        deadline_at = None if options.deadline is None else started + options.deadline
        await _process(manifest, ledger, client, options, stop, progress, report, deadline_at)
    report.counts = ledger.counts()
    report.exit_code = _exit_code(report.counts, report.trip)
    report.seconds = time.monotonic() - started
    report.requests = dict(client.requests)
    ledger.finish_run(run_id, report.exit_code, report.counts)
    if report.exit_code == EXIT_OK:
        ledger.meta_set("last_success_at", _utc_iso())
    return report


def _utc_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def source_fingerprint(manifest: Manifest) -> str | None:
    """What a CSV expansion depends on: the manifest's bytes and the CSV file's identity.

    Listings and inventories can change without a trace on our side, so they have none.
    """
    csv_path = manifest.source.csv_path
    if manifest.source.kind != "csv" or csv_path is None:
        return None
    try:
        stat = csv_path.stat()
        text = manifest.path.read_bytes()
    except OSError:
        return None
    parts = [hashlib.sha256(text).hexdigest(), str(csv_path.resolve()), stat.st_size,
             stat.st_mtime_ns]  # fmt: skip
    return json.dumps(parts)


async def _expand(
    manifest: Manifest, ledger: Ledger, client: CIClient, policy: retry.RetryPolicy
) -> Expansion:
    fingerprint = source_fingerprint(manifest)
    if fingerprint is not None and ledger.meta_get("expanded_source") == fingerprint:
        log.info("the CSV and manifest are unchanged since they were expanded; skipping expansion")
        return Expansion(skipped=True)
    with ledger.loading(refresh_changed=manifest.job.reprocess_changed) as loader:
        expansion = await expand(
            manifest, client, loader.add, policy=policy, budget=retry.RetryBudget()
        )
    expansion.added = loader.added
    if fingerprint is not None:
        ledger.meta_set("expanded_source", fingerprint)
    log.info(
        "expanded: %d objects listed, %d matched, %d new%s",
        expansion.seen,
        expansion.matched,
        expansion.added,
        " or changed" if manifest.job.reprocess_changed else "",
    )
    return expansion


async def _process(
    manifest: Manifest,
    ledger: Ledger,
    client: CIClient,
    options: RunOptions,
    stop: asyncio.Event,
    progress: Callable[[Progress], None] | None,
    report: RunReport,
    deadline_at: float | None,
) -> None:
    budget = retry.RetryBudget()
    queue = await resolve_queue(client, manifest, options.resume_queue, options.policy, budget)
    job = manifest.job
    template = JobTemplate(
        queue_id=queue.queue_id,
        template_id=job.template_id,
        process_rule=job.process_rule,
        is_pic_info=job.is_pic_info,
        callback=job.callback,
        callback_format=job.callback_format,
        callback_type=job.callback_type,
        callback_mq=job.callback_mq,
    )
    cap = int((queue.max_size or 10000) * options.queue_fill)
    outstanding = Outstanding(cap, ledger.outstanding_count())
    # `halt` stops submission (signal, deadline, breaker); `quit_tracking` stops tracking too.
    halt, quit_tracking = asyncio.Event(), asyncio.Event()
    breaker = Breaker(manifest.limits)

    def on_failure(code: str, message: str) -> bool:
        if breaker.failure(code, message):
            log.error("failure breaker tripped: %s", breaker.trip)
            halt.set()
        return breaker.tripped

    def on_final(detail: JobDetail) -> None:
        if detail.state == "Success":
            breaker.success()
        elif detail.state == "Failed":
            on_failure(detail.code or "", detail.message or "")

    submitter = Submitter(
        client,
        ledger,
        template,
        outstanding,
        policy=options.policy,
        budget=budget,
        concurrency=manifest.limits.concurrency,
        on_failure=on_failure,
    )
    tracker = Tracker(
        client,
        ledger,
        outstanding,
        policy=options.policy,
        budget=budget,
        poll_min=options.poll_min,
        poll_max=options.poll_max,
        on_final=on_final,
    )
    reconciler = Reconciler(client, ledger, queue.queue_id, policy=options.policy, budget=budget)
    loop = asyncio.get_running_loop()
    timers: list[asyncio.TimerHandle] = []

    def deadline_reached() -> None:
        report.deadline_reached = True
        log.warning(
            "deadline reached: no new submissions; tracking running jobs for up to %gs",
            options.grace,
        )
        halt.set()
        timers.append(loop.call_later(options.grace, quit_tracking.set))

    if deadline_at is not None:
        if (left := deadline_at - time.monotonic()) > 0:
            timers.append(loop.call_later(left, deadline_reached))
        else:
            deadline_reached()
    submitting = asyncio.Event()
    submitting.set()
    background = [
        asyncio.create_task(_relay(stop, halt, quit_tracking)),
        asyncio.create_task(_report_progress(ledger, options.progress_every, progress)),
    ]
    tracking = (
        None if options.no_wait else asyncio.create_task(tracker.run(submitting, quit_tracking))
    )
    try:
        await _settle(ledger, reconciler)
        while not halt.is_set():
            await submitter.run(halt)
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
        tracker.wake()
        if tracking is not None:
            await tracking
    finally:
        submitting.clear()
        for timer in timers:
            timer.cancel()
        for task in background:
            task.cancel()
        if tracking is not None and not tracking.done():
            tracking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tracking
    report.submitted = submitter.stats.submitted
    report.adopted = reconciler.adopted
    report.trip = breaker.trip
    if breaker.trip is not None:
        report.message = f"failure breaker tripped: {breaker.trip}"


async def _relay(stop: asyncio.Event, *events: asyncio.Event) -> None:
    await stop.wait()
    for event in events:
        event.set()


async def _settle(ledger: Ledger, reconciler: Reconciler) -> None:
    since = ledger.unknown_since()
    if since is not None:
        await reconciler.settle(since, datetime.now(UTC))


async def _report_progress(
    ledger: Ledger, every: float, progress: Callable[[Progress], None] | None
) -> None:
    """Every `every` seconds: a snapshot to the display, and the rate and ETA to the ledger."""
    samples: collections.deque[tuple[float, int]] = collections.deque()
    pause = every
    while True:
        await asyncio.sleep(pause)
        before = time.monotonic()
        counts = ledger.counts()
        now = time.monotonic()
        # Counting a million rows takes a while and blocks the loop: keep it under 5 % of it.
        pause = max(every, 20 * (now - before))
        total = sum(counts.values())
        done = counts["success"] + counts["failed"] + counts["cancelled"]
        samples.append((now, done))
        while now - samples[0][0] > 60:
            samples.popleft()
        first_time, first_done = samples[0]
        rate = (done - first_done) / (now - first_time) if now > first_time else 0.0
        eta = (total - done) / rate if rate > 0 else None
        snapshot = Progress(counts, total, done, rate, eta)
        ledger.meta_set("progress", json.dumps({**snapshot.as_dict(), "at": _utc_iso()}))
        if progress is not None:
            progress(snapshot)
