"""`picjobs status` and `picjobs report`: what the ledger says, for people and for programs."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys

import click

from orchestrator.cli._common import errors, ledger_option, load, manifest_argument, open_output
from orchestrator.exceptions import UsageError
from orchestrator.ledger import Ledger, State
from orchestrator.report import failed_manifest, status, summary_line, write_report


@click.command("status")
@manifest_argument
@ledger_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status_command(manifest_path: str, ledger: str | None, as_json: bool) -> None:
    """Counts per state from the ledger of MANIFEST."""
    with errors():
        manifest = load(manifest_path, ledger)
        if not manifest.ledger_path.exists():
            raise UsageError(f"{manifest.ledger_path}: no ledger yet; run the manifest first")
        with Ledger.open(manifest.ledger_path) as db:
            info = status(db, manifest.job_names)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    click.echo(f"{manifest.name}: {info['total']} items in {info['ledger']}")
    for state, n in info["counts"].items():
        click.echo(f"  {state:<11}{n:>9}")
    jobs = info["jobs"]
    if len(manifest.jobs) > 1 or any(not job["in_manifest"] for job in jobs.values()):
        for name, job in jobs.items():
            gone = "" if job["in_manifest"] else ", no longer in the manifest"
            click.echo(f"  job {name} ({job['total']} items{gone}): {summary_line(job['counts'])}")
    if info["running"]:
        eta = info["eta_seconds"]
        click.echo(f"  running at {info['rate']:g} jobs/s, ETA {'-' if eta is None else f'{eta}s'}")
    if info["last_success_at"]:
        click.echo(f"  last fully successful run ended {info['last_success_at']}")


@click.command("report")
@manifest_argument
@ledger_option
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
    """One line per item: input, output, JobId, level, state, Code, Message, attempts, times,
    and the manifest job that planned it."""
    with errors():
        manifest = load(manifest_path, ledger)
        if not manifest.ledger_path.exists():
            raise UsageError(f"{manifest.ledger_path}: no ledger yet; run the manifest first")
        with (
            Ledger.open(manifest.ledger_path) as db,
            open_output(output) as out,
            contextlib.closing(db.iter_items([State.FAILED] if failed_only else None)) as rows,
        ):
            try:
                if failed_only:
                    lines = failed_manifest(rows, with_output=len(manifest.jobs) == 1)
                    csv.writer(out, lineterminator="\n").writerows(lines)
                else:
                    write_report(rows, out, fmt)
                out.flush()
            except BrokenPipeError:
                # `picjobs report | head`: the reader has all it wanted.
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                sys.exit(0)
