"""The `picjobs` command: parse arguments, build settings, run, map errors to exit codes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import secrets
import signal
import sqlite3
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from orchestrator.ci.client import CIClient, ClientSettings
from orchestrator.ci.signing import Credentials
from orchestrator.config import Manifest, load_manifest
from orchestrator.engine.expand import expand
from orchestrator.engine.ratelimit import AdaptiveRateLimiter
from orchestrator.engine.runner import RunOptions, run
from orchestrator.exceptions import PicjobsError, UsageError
from orchestrator.ledger import Ledger
from orchestrator.report import failed_manifest, status, summary_line, write_report

__all__ = ["main"]

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("orchestrator")
EMBEDDED = "embedded"


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Our errors become one line on stderr and their exit code; no traceback for bad input."""
    try:
        yield
    except PicjobsError as exc:
        click.echo(f"picjobs: error: {exc}", err=True)
        sys.exit(exc.exit_code)


def _setup_logging(quiet: bool, log_format: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    root = logging.getLogger("orchestrator")
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING if quiet else logging.INFO)
    root.propagate = False


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "time": self.formatTime(record),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": record.getMessage(),
            },
            ensure_ascii=False,
        )


def _credentials() -> Credentials:
    secret_id = os.environ.get("COS_SECRET_ID", "")
    secret_key = os.environ.get("COS_SECRET_KEY", "")
    if not secret_id or not secret_key:
        raise UsageError(
            "set COS_SECRET_ID and COS_SECRET_KEY (and COS_SECURITY_TOKEN if temporary)"
        )
    return Credentials(secret_id, secret_key, os.environ.get("COS_SECURITY_TOKEN") or None)


def _load(manifest_path: str, ledger: str | None) -> Manifest:
    manifest = load_manifest(manifest_path)
    if ledger:
        manifest = dataclasses.replace(manifest, ledger_path=Path(ledger).resolve())
    return manifest


@contextlib.asynccontextmanager
async def _endpoint(manifest: Manifest) -> AsyncIterator[tuple[str | None, Credentials]]:
    """Where to send requests, with which credentials; starts the embedded emulator if asked."""
    endpoint = os.environ.get("PICJOBS_ENDPOINT") or manifest.target.endpoint
    if endpoint != EMBEDDED:
        yield endpoint, _credentials()
        return
    from orchestrator.demo import seed_demo_bucket
    from orchestrator.emulator.server import EmulatorConfig, running_emulator

    data = manifest.path.parent / ".picjobs" / f"{manifest.name}-data"
    seed_demo_bucket(data, manifest.target.bucket)
    (data / manifest.job.output_bucket).mkdir(parents=True, exist_ok=True)
    creds = Credentials("AKID" + secrets.token_hex(16), secrets.token_hex(16))
    config = EmulatorConfig(
        data_dir=data,
        default_bucket=manifest.target.bucket,
        region=manifest.target.region,
        credentials=creds,
    )
    async with running_emulator(config) as emu:
        log.info("embedded emulator at %s serving %s", emu.url, data)
        yield emu.url, creds


def _client(manifest: Manifest, endpoint: str | None, creds: Credentials) -> CIClient:
    settings = ClientSettings(
        bucket=manifest.target.bucket,
        region=manifest.target.region,
        credentials=creds,
        endpoint=endpoint,
        concurrency=manifest.limits.concurrency,
    )
    return CIClient(settings, limiter=AdaptiveRateLimiter(manifest.limits.rate))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="picjobs")
def cli() -> None:
    """Bulk image processing on Tencent Cloud Infinite, tracked in a SQLite ledger."""


def _common(fn: F) -> F:
    fn = click.option("--quiet", "-q", is_flag=True, help="Errors and the final summary only.")(fn)
    return click.option(
        "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
    )(fn)


@cli.command("run")
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(dir_okay=False))
@click.option("--ledger", help="Ledger path (default: from the manifest).")
@click.option("--no-wait", is_flag=True, help="Submit, then exit 75 without waiting for jobs.")
@click.option("--dry-run", is_flag=True, help="Print the plan; submit nothing.")
@click.option("--rate", type=click.FloatRange(min=0.01), help="CI requests per second.")
@click.option("--concurrency", type=click.IntRange(min=1), help="HTTP requests in flight.")
@click.option("--resume-queue", is_flag=True, help="Resume a Paused queue before submitting.")
@_common
def run_command(
    manifest_path: str,
    ledger: str | None,
    no_wait: bool,
    dry_run: bool,
    rate: float | None,
    concurrency: int | None,
    resume_queue: bool,
    quiet: bool,
    log_format: str,
) -> None:
    """Expand MANIFEST into jobs, submit them and wait for every one to finish.

    Running it again resumes: finished items are skipped, interrupted ones reconciled.

    \b
    Exit codes: 0 all succeeded, 1 some failed, 2 usage or manifest error,
    3 another run holds the ledger, 75 incomplete (run again to resume).
    """
    _setup_logging(quiet, log_format)
    with _errors():
        manifest = _load(manifest_path, ledger)
        limits = manifest.limits
        limits = dataclasses.replace(
            limits, rate=rate or limits.rate, concurrency=concurrency or limits.concurrency
        )
        manifest = dataclasses.replace(manifest, limits=limits)
        if dry_run:
            asyncio.run(_dry_run(manifest))
            return
        code = asyncio.run(
            _run(manifest, RunOptions(no_wait=no_wait, resume_queue=resume_queue), quiet)
        )
    sys.exit(code)


async def _run(manifest: Manifest, options: RunOptions, quiet: bool) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _on_signal, stop, sig)
    with Ledger.open(manifest.ledger_path) as ledger:
        ledger.lock()
        async with (
            _endpoint(manifest) as (endpoint, creds),
            _client(manifest, endpoint, creds) as client,
        ):
            report = await run(manifest, ledger, client, options, stop=stop, progress=log.info)
    lines = [
        f"{manifest.name}: {summary_line(report.counts)} "
        f"({report.submitted} submitted this run, {report.seconds:.1f}s); exit {report.exit_code}",
    ]
    if report.message:
        lines.append(report.message)
    if manifest.target.endpoint == EMBEDDED and report.counts["success"]:
        out = (
            manifest.path.parent / ".picjobs" / f"{manifest.name}-data" / manifest.job.output_bucket
        )
        lines.append(f"output images are in {out}")
    click.echo("\n".join(lines))
    return report.exit_code


def _on_signal(stop: asyncio.Event, sig: signal.Signals) -> None:
    if stop.is_set():
        os._exit(75)  # a second signal: leave now; every commit so far is consistent
    log.warning("%s: stopping submission; run again to resume", sig.name)
    stop.set()


async def _dry_run(manifest: Manifest) -> None:
    with tempfile.TemporaryDirectory() as tmp, Ledger.open(Path(tmp) / "plan.sqlite") as plan:
        async with (
            _endpoint(manifest) as (endpoint, creds),
            _client(manifest, endpoint, creds) as client,
        ):
            expansion = await expand(manifest, client, plan.add_items)
        done = _already_final(manifest.ledger_path, plan)
        levels = plan.level_counts("pending")
    todo = expansion.matched - done
    click.echo(f"{manifest.name}: {expansion.seen} objects, {expansion.matched} match the filters")
    for level in sorted(levels, reverse=True):
        click.echo(f"  JobLevel {level}: {levels[level]}")
    click.echo(f"  already final in the ledger: {done}")
    click.echo("  output collisions: none")
    click.echo(
        f"  to submit: {todo}, about {todo / manifest.limits.rate:.0f}s at {manifest.limits.rate:g} requests/s"
    )


def _already_final(ledger_path: Path, plan: Ledger) -> int:
    if not ledger_path.exists():
        return 0
    real = sqlite3.connect(f"file:{ledger_path}?mode=ro", uri=True)
    try:
        done = 0
        ids = [row.item_id for row in plan.iter_items()]
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            done += real.execute(
                f"SELECT count(*) FROM items WHERE state IN ('success','failed','cancelled') "
                f"AND item_id IN ({','.join('?' * len(chunk))})",
                chunk,
            ).fetchone()[0]
        return done
    except sqlite3.Error:
        return 0
    finally:
        real.close()


@cli.command("status")
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(dir_okay=False))
@click.option("--ledger", help="Ledger path (default: from the manifest).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status_command(manifest_path: str, ledger: str | None, as_json: bool) -> None:
    """Counts per state from the ledger of MANIFEST."""
    with _errors():
        manifest = _load(manifest_path, ledger)
        if not manifest.ledger_path.exists():
            raise UsageError(f"{manifest.ledger_path}: no ledger yet; run the manifest first")
        with Ledger.open(manifest.ledger_path) as db:
            info = status(db)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"{manifest.name}: {info['total']} items in {info['ledger']}")
    for state, n in info["counts"].items():
        click.echo(f"  {state:<11}{n:>9}")


@cli.command("report")
@click.argument("manifest_path", metavar="MANIFEST", type=click.Path(dir_okay=False))
@click.option("--ledger", help="Ledger path (default: from the manifest).")
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True
)
@click.option(
    "--failed-only", is_flag=True, help="Only failed items, as a CSV usable as a [source] csv."
)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False), help="Write here instead of stdout."
)
def report_command(
    manifest_path: str, ledger: str | None, fmt: str, failed_only: bool, output: str | None
) -> None:
    """One line per item: input, output, JobId, level, state, Code, Message, attempts, times."""
    import csv

    with _errors():
        manifest = _load(manifest_path, ledger)
        if not manifest.ledger_path.exists():
            raise UsageError(f"{manifest.ledger_path}: no ledger yet; run the manifest first")
        with Ledger.open(manifest.ledger_path) as db, _open_output(output) as out:
            if failed_only:
                csv.writer(out, lineterminator="\n").writerows(
                    failed_manifest(db.iter_items(["failed"]))
                )
            else:
                write_report(db.iter_items(), out, fmt)


@contextlib.contextmanager
def _open_output(path: str | None) -> Iterator[Any]:
    if path is None:
        yield sys.stdout
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8", newline="") as out:
        yield out


@cli.command("emulator")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option(
    "--data", "data_dir", default=".", show_default=True, type=click.Path(file_okay=False)
)
@click.option("--bucket", help="Default bucket (default: the only folder under --data).")
@click.option("--region", default="ap-guangzhou", show_default=True)
@click.option("--secret-id", help="Verify signatures with this SecretId (default: $COS_SECRET_ID).")
@click.option("--secret-key", help="... and this SecretKey (default: $COS_SECRET_KEY).")
@click.option(
    "--rate", type=float, help="CI requests/s before answering 429 SlowDown (default: unlimited)."
)
@click.option(
    "--job-seconds", type=float, default=0.0, show_default=True, help="How long each job runs."
)
def emulator_command(
    host: str,
    port: int,
    data_dir: str,
    bucket: str | None,
    region: str,
    secret_id: str | None,
    secret_key: str | None,
    rate: float | None,
    job_seconds: float,
) -> None:
    """Serve a local emulator of the CI pic-job, queue and COS listing APIs."""
    from orchestrator.emulator.server import config_from_env, serve_forever

    with _errors():
        config = config_from_env(Path(data_dir))
        if secret_id and secret_key:
            config = dataclasses.replace(config, credentials=Credentials(secret_id, secret_key))
        config = dataclasses.replace(
            config,
            default_bucket=bucket,
            region=region,
            rate=rate,
            progression="delay" if job_seconds > 0 else "instant",
            job_seconds=job_seconds,
        )
        serve_forever(config, host, port)


def main() -> None:
    cli(prog_name="picjobs")
