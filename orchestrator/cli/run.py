"""`picjobs run`: expand a manifest, submit its jobs, follow them to the end."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import click

from orchestrator.cli._common import (
    EMBEDDED,
    Duration,
    common_options,
    connect,
    errors,
    ledger_option,
    load,
    log,
    manifest_argument,
    setup_logging,
)
from orchestrator.cli.progress import display
from orchestrator.cloud.retry import RetryPolicy
from orchestrator.engine.dryrun import Plan, dry_run
from orchestrator.engine.runner import Progress, RunOptions, run
from orchestrator.engine.skip import SkipPreview
from orchestrator.exit_codes import ExitCode
from orchestrator.ledger import Ledger, State
from orchestrator.manifest import Manifest
from orchestrator.notify.watch import Watch, watching
from orchestrator.report import run_metrics, summary_line, write_metrics
from orchestrator.shard import check_shard_count, parse_shard, sharded


@click.command("run")
@manifest_argument
@ledger_option
@click.option("--no-wait", is_flag=True, help="Submit, then exit 75 without waiting for jobs.")
@click.option("--dry-run", is_flag=True, help="Print the plan; submit nothing.")
@click.option("--rate", type=click.FloatRange(min=0.01), help="CI requests per second.")
@click.option("--concurrency", type=click.IntRange(min=1), help="HTTP requests in flight.")
@click.option(
    "--shard",
    metavar="K/N",
    help="Process only shard K of N (0 <= K < N <= 1024), with its own ledger and 1/N of the"
    " rate and connections: `--shard $(JOB_COMPLETION_INDEX)/8` in a Kubernetes Indexed Job.",
)
@click.option("--resume-queue", is_flag=True, help="Resume a Paused queue before submitting.")
@click.option("--retry-failed", is_flag=True, help="Queue failed items again (history is kept).")
@click.option(
    "--force",
    is_flag=True,
    help="Ignore skip_existing this run: process objects whose output exists, and the skipped.",
)
@click.option(
    "--deadline", type=Duration(), help="Stop submitting after this long (6h, 30m), then exit 75."
)
@click.option(
    "--grace",
    type=Duration(),
    default="5m",
    show_default=True,
    help="After the deadline, keep tracking running jobs this long.",
)
@click.option(
    "--metrics-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write Prometheus metrics here at the end (node_exporter textfile collector).",
)
@common_options
def run_command(
    manifest_path: str,
    ledger: str | None,
    no_wait: bool,
    dry_run: bool,
    rate: float | None,
    concurrency: int | None,
    shard: str | None,
    resume_queue: bool,
    retry_failed: bool,
    force: bool,
    deadline: float | None,
    grace: float,
    metrics_file: Path | None,
    quiet: bool,
    log_format: str,
) -> None:
    """Expand MANIFEST into jobs, submit them and wait for every one to finish.

    Running it again resumes: finished items are skipped, interrupted ones reconciled.
    With --shard K/N, --rate, --concurrency and [limits] are totals for all N shards.

    \b
    Exit codes: 0 all succeeded (or skipped), 1 some failed, 2 usage or manifest error,
    3 another run holds the ledger, 4 failure breaker tripped,
    75 incomplete: deadline, signal or --no-wait (run again to resume).
    """
    setup_logging(quiet, log_format)
    with errors():
        manifest = load(manifest_path, ledger)
        limits = manifest.limits
        limits = dataclasses.replace(
            limits, rate=rate or limits.rate, concurrency=concurrency or limits.concurrency
        )
        manifest = dataclasses.replace(manifest, limits=limits)
        if shard is not None:
            part = parse_shard(shard)
            if not dry_run:
                check_shard_count(manifest.ledger_path, part)
            manifest = sharded(manifest, part)
            limits = manifest.limits
        if dry_run:
            plan = asyncio.run(_dry_run(manifest, force=force))
            click.echo("\n".join(_plan_lines(manifest.name, plan)))
            return
    with watching(manifest) as watch, errors(watch.note):
        show_progress = not quiet and log_format == "text"
        with display(show_progress, log) as (progress, every):
            options = RunOptions(
                no_wait=no_wait,
                resume_queue=resume_queue,
                retry_failed=retry_failed,
                force=force,
                deadline=deadline,
                grace=grace,
                policy=RetryPolicy(attempts=limits.max_attempts),
                progress_every=every,
            )
            code, summary = asyncio.run(_run(manifest, options, progress, metrics_file, watch))
        click.echo(summary)  # after the progress bar is gone
        sys.exit(code)


async def _run(
    manifest: Manifest,
    options: RunOptions,
    progress: Callable[[Progress], None],
    metrics_file: Path | None,
    watch: Watch,
) -> tuple[int, str]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _on_signal, stop, sig)
    with Ledger.open(
        manifest.ledger_path,
        synchronous=manifest.ledger_sync,
        journal=manifest.limits.ledger_journal,
    ) as ledger:
        stale = ledger.lock()
        if stale is not None:
            log.warning("taking over the lock of a run that ended without releasing it (%s)", stale)
        async with connect(manifest) as client:
            report = await run(manifest, ledger, client, options, stop=stop, progress=progress)
        watch.seconds, watch.submitted = report.seconds, report.submitted
        if metrics_file is not None:
            metrics = run_metrics(
                manifest.name,
                report.counts,
                seconds=report.seconds,
                exit_code=report.exit_code,
                finished_at=datetime.now(UTC).isoformat(),
                last_success_at=ledger.meta_get("last_success_at"),
            )
            write_metrics(metrics_file, metrics)
    name = manifest.name if manifest.shard is None else f"{manifest.name} shard {manifest.shard}"
    lines = [
        f"{name}: {summary_line(report.counts)} "
        f"({report.submitted} submitted this run, {report.seconds:.1f}s); exit {report.exit_code}",
    ]
    skipped = sum(skip.skipped for skip in report.skips)
    if skipped:
        lines.append(f"{skipped} skipped this run: their output exists (skip_existing)")
    if report.message:
        lines.append(report.message)
    if report.deadline_reached:
        lines.append("deadline reached; run again to continue")
    if manifest.target.endpoint == EMBEDDED and report.counts[State.SUCCESS]:
        data = manifest.path.parent / ".picjobs" / f"{manifest.name}-data"
        outs = ", ".join(str(data / bucket) for bucket in manifest.output_buckets)
        lines.append(f"output images are in {outs}")
    return report.exit_code, "\n".join(lines)


def _on_signal(stop: asyncio.Event, sig: signal.Signals) -> None:
    if stop.is_set():
        os._exit(
            ExitCode.INCOMPLETE
        )  # a second signal: leave now; every commit so far is consistent
    log.warning("%s: stopping submission; run again to resume", sig.name)
    stop.set()


async def _dry_run(manifest: Manifest, *, force: bool) -> Plan:
    async with connect(manifest) as client:
        return await dry_run(manifest, client, force=force)


def _plan_lines(name: str, plan: Plan) -> list[str]:
    lines = [f"{name}: {plan.seen} objects, {plan.matched} match the filters"]
    lines += [
        f"  JobLevel {level}: {plan.levels[level]}" for level in sorted(plan.levels, reverse=True)
    ]
    if len(plan.jobs) > 1:
        lines += [f"  job {job}: {n} items" for job, n in plan.jobs.items()]
    lines.append(f"  already final in the ledger: {plan.already_final}")
    for job, (n, same_output) in plan.replanned.items():
        what = {n: "operation", 0: "output"}.get(same_output, "operation or output")
        lines.append(
            f"  {job}: the {what} changed since its last run; {n:,} objects will be processed again"
        )
    if plan.forced:
        lines.append(f"  --force: skipped earlier, to be processed: {plan.forced}")
    lines += [line for skip in plan.skips for line in _skip_lines(skip)]
    lines.append(
        f"  to submit: {plan.to_submit}, about {plan.seconds:.0f}s at {plan.rate:g} requests/s"
    )
    return lines


def _skip_lines(skip: SkipPreview) -> list[str]:
    where = f"under {skip.prefix!r}" if skip.prefix else "in the whole output bucket"
    lines = [f'  skip_existing = "{skip.mode}": {skip.listed} objects {where}']
    if skip.force:
        lines.append(f"  output exists, processed anyway (--force): {skip.existing}")
    else:
        lines.append(f"  output exists, to be skipped: {skip.existing}")
    if skip.unknown_time:
        lines.append(
            f'  of those, {skip.unknown_time} inputs of unknown time, compared as "exists"'
        )
    return lines
