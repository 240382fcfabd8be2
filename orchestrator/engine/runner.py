"""One `picjobs run`: expand the manifest into the ledger, then submit and track to final states."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from orchestrator import defaults
from orchestrator.cloud.client import CIClient
from orchestrator.cloud.retry import Retrier, RetryPolicy
from orchestrator.engine.breaker import Trip
from orchestrator.engine.expand import Expansion, expand
from orchestrator.engine.processing import Processing
from orchestrator.engine.progress import Progress, ProgressReporter, utc_iso
from orchestrator.engine.queue import resolve_queue
from orchestrator.engine.skip import Skipping, SkipReport
from orchestrator.exit_codes import ExitCode
from orchestrator.items import ItemRecord
from orchestrator.ledger import Ledger, SkipRule, State
from orchestrator.manifest import Manifest

__all__ = ["Progress", "RunOptions", "RunReport", "run", "source_fingerprint"]

log = logging.getLogger(__name__)

# Items in these states still need the run: to be sent, settled or followed to the end.
UNFINISHED = (State.PENDING, State.SUBMITTING, State.UNKNOWN, State.SUBMITTED)


@dataclass(frozen=True)
class RunOptions:
    no_wait: bool = False
    resume_queue: bool = False
    retry_failed: bool = False
    force: bool = False  # ignore skip_existing this run
    deadline: float | None = None  # seconds after the run starts: stop submitting
    grace: float = 300.0  # seconds to keep tracking after the deadline
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    poll_min: float = defaults.POLL_MIN
    poll_max: float = defaults.POLL_MAX
    queue_fill: float = 0.9
    progress_every: float = 5.0


@dataclass
class RunReport:
    exit_code: ExitCode
    counts: dict[str, int]
    expansion: Expansion
    submitted: int = 0
    adopted: int = 0
    seconds: float = 0.0
    message: str = ""
    trip: Trip | None = None
    deadline_reached: bool = False
    skips: list[SkipReport] = field(default_factory=list)  # one per job that skips


def exit_code(counts: dict[str, int], trip: Trip | None) -> ExitCode:
    if trip is not None:
        return ExitCode.TRIPPED
    if any(counts[state] for state in UNFINISHED):
        return ExitCode.INCOMPLETE
    if counts.get(State.FAILED, 0) or counts.get(State.CANCELLED, 0):
        return ExitCode.FAILED
    return ExitCode.OK


# Turns of the event loop given to the outputs' listing between two batches of an expansion.
_LISTING_TURNS = 4


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
    retrier = Retrier(options.policy)
    # Job names the ledger holds that the manifest no longer has: one pass over the items.
    gone = ledger.job_names() - set(manifest.job_names)
    # skip_existing for each job (the one place that names them), within the expansion.
    skipping = [
        Skipping(ledger, client, job, retrier, force=options.force) for job in manifest.jobs
    ]
    expansion, skips = await _expand(
        manifest, ledger, client, retrier, skipping, relabel=bool(gone)
    )
    run_id = ledger.start_run(os.getpid(), socket.gethostname(), {"manifest": str(manifest.path)})
    recovered = ledger.recover_interrupted()
    if recovered:
        log.info("%d submissions of an interrupted run have an unknown outcome", recovered)
    if gone:  # expansion may have given some of their items a job of the manifest
        gone = ledger.job_names() - set(manifest.job_names)
    jobs = run_jobs(manifest, gone)
    report = RunReport(ExitCode.OK, ledger.counts(jobs), expansion, skips=skips)
    if options.retry_failed:
        log.info("%d failed items queued again", ledger.retry_failed(jobs))
    counts = ledger.counts(jobs)
    reporter = ProgressReporter(ledger, options.progress_every, progress, jobs=jobs)
    if sum(counts[state] for state in UNFINISHED) and not stop.is_set():
        processing = await _processing(manifest, ledger, client, options, jobs)
        if options.deadline is not None:
            processing.set_deadline(started + options.deadline)
        async with reporter.running():
            await processing.run(stop, wait=not options.no_wait)
        report.submitted = processing.submitter.stats.submitted
        report.adopted = processing.reconciler.adopted + processing.reconciler.spotted
        report.trip = processing.trip
        report.deadline_reached = processing.deadline_reached
        report.message = processing.message
    report.counts = ledger.counts(jobs)
    report.exit_code = exit_code(report.counts, report.trip)
    report.seconds = time.monotonic() - started
    ledger.finish_run(run_id, report.exit_code, report.counts)
    # Throttled answers per second, for the HTML report (absent: not recorded, not none).
    ledger.meta_set(f"throttled:{run_id}", json.dumps(client.throttled, sort_keys=True))
    if report.exit_code == ExitCode.OK:
        ledger.meta_set("last_success_at", utc_iso())
    reporter.finish()
    return report


def run_jobs(manifest: Manifest, gone: set[str]) -> frozenset[str] | None:
    """The jobs a run submits and counts: None (all) unless the ledger holds items of jobs no
    longer in the manifest (`gone`), which stay as they are; the tracker still follows them."""
    if not gone:
        return None
    log.info(
        "items of %s, no longer in the manifest, are left as they are",
        ", ".join(f"job {name}" for name in sorted(gone)),
    )
    return frozenset(manifest.job_names)


async def _processing(
    manifest: Manifest,
    ledger: Ledger,
    client: CIClient,
    options: RunOptions,
    jobs: frozenset[str] | None = None,
) -> Processing:
    retrier = Retrier(options.policy)
    queue = await resolve_queue(
        client,
        retrier,
        queue_id=manifest.target.queue_id,
        resume=options.resume_queue,
        where=str(manifest.path),
    )
    return Processing(
        manifest,
        ledger,
        client,
        queue,
        retrier,
        queue_fill=options.queue_fill,
        poll_min=options.poll_min,
        poll_max=options.poll_max,
        grace=options.grace,
        jobs=jobs,
    )


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
    manifest: Manifest,
    ledger: Ledger,
    client: CIClient,
    retrier: Retrier,
    skipping: list[Skipping],
    *,
    relabel: bool,
) -> tuple[Expansion, list[SkipReport]]:
    fingerprint = source_fingerprint(manifest)
    if fingerprint is not None and ledger.meta_get("expanded_source") == fingerprint:
        log.info("the CSV and manifest are unchanged since they were expanded; skipping expansion")
        return Expansion(skipped=True), [await skip.run() for skip in skipping]
    rules: list[SkipRule] = []
    if not ledger.total():
        # A new ledger: every item will be pending, so the outputs are listed while the
        # source is expanded, and the bulk load inserts the items whose output is listed
        # skipped already; each batch waits for the listing to have reached its outputs.
        for skip in skipping:
            skip.start_listing()
        rules = [rule for skip in skipping if (rule := skip.rule) is not None]
    refresh = frozenset(job.label for job in manifest.jobs if job.reprocess_changed)

    async def listed(records: list[ItemRecord]) -> None:
        # A listing page takes the loop a few turns (the request, its answer's reads, the
        # next request): given them between the expansion's batches, the listing keeps ahead
        # and a batch seldom waits for it (with one turn, a million-key plan stood idle 2 s).
        for _turn in range(_LISTING_TURNS):
            await asyncio.sleep(0)
        for skip in skipping:
            await skip.listed(records)

    try:
        with ledger.loading(refresh_changed=refresh, relabel=relabel, skip=rules) as loader:
            expansion = await expand(
                manifest, client, loader.add, retrier=retrier, ready=listed if rules else None
            )
            loader.flush()
            skips = [await skip.run() for skip in skipping]
    finally:
        for skip in skipping:
            await skip.cancel()
    expansion.added = loader.added
    if fingerprint is not None:
        ledger.meta_set("expanded_source", fingerprint)
    log.info(
        "expanded: %d objects listed, %d matched, %d new%s%s",
        expansion.seen,
        expansion.matched,
        expansion.added,
        " or changed" if refresh else "",
        f" ({expansion.planned} items for {len(manifest.jobs)} jobs)"
        if len(manifest.jobs) > 1
        else "",
    )
    return expansion, skips
