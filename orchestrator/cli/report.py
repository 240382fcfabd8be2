"""`picjobs status` and `picjobs report`: what the ledger says, for people and for programs."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
from collections.abc import Iterable
from typing import IO

import click

from orchestrator.cli._common import errors, ledger_option, load, manifest_argument, open_output
from orchestrator.exceptions import UsageError
from orchestrator.exit_codes import ExitCode
from orchestrator.htmlreport import render_html, render_shards_html
from orchestrator.ledger import ItemRow, Ledger, State
from orchestrator.report import failed_manifest, status, summary_line, write_report
from orchestrator.shard import MAX_SHARDS
from orchestrator.shardset import ShardProblem, ShardRows, shards_status

shards_option = click.option(
    "--shards",
    type=click.IntRange(1, MAX_SHARDS),
    metavar="N",
    help="Read the N shard ledgers of `run --shard K/N` as one.",
)


@click.command("status")
@manifest_argument
@ledger_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@shards_option
def status_command(
    manifest_path: str, ledger: str | None, as_json: bool, shards: int | None
) -> None:
    """Counts per state from the ledger of MANIFEST."""
    if shards is not None:
        _shards_status(manifest_path, ledger, as_json, shards)
        return
    with errors():
        manifest = load(manifest_path, ledger)
        if not manifest.ledger_path.exists():
            raise UsageError(f"{manifest.ledger_path}: no ledger yet; run the manifest first")
        with Ledger.open(manifest.ledger_path, journal=manifest.limits.ledger_journal) as db:
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
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl", "html"]),
    default="csv",
    show_default=True,
    help="html: one self-contained page of charts and failures (needs -o).",
)
@click.option(
    "--failed-only", is_flag=True, help="Only failed items, as a CSV usable as a [source] csv."
)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False), help="Write here instead of stdout."
)
@shards_option
def report_command(
    manifest_path: str,
    ledger: str | None,
    fmt: str,
    failed_only: bool,
    output: str | None,
    shards: int | None,
) -> None:
    """One line per item: input, output, JobId, level, state, Code, Message, attempts, times,
    and the manifest job that planned it.

    With --format html: one self-contained page of counts, charts and failures.
    With --shards N, the items of all N shard ledgers; a shard ledger that is missing or being
    written by a run is named on stderr, and a missing or unreadable one makes the exit code 75.
    """
    with errors():
        if fmt == "html" and (output is None or failed_only):
            raise UsageError("--format html needs -o FILE and cannot take --failed-only")
        manifest = load(manifest_path, ledger)
        states = [State.FAILED] if failed_only else None
        if shards is not None:
            merged = ShardRows(manifest, shards, states)
            problems: list[ShardProblem] = merged.problems
            if fmt == "html":
                page, problems = render_shards_html(manifest, shards, path=manifest_path)
                with open_output(output) as out:
                    out.write(page)
            else:
                with open_output(output) as out:
                    _write(merged, out, fmt, failed_only, with_output=len(manifest.jobs) == 1)
            for problem in problems:
                click.echo(f"picjobs: warning: {problem}", err=True)
            if any(p.condition != "running" for p in problems):
                # A report that lacks whole shards must not pass for the night's full account.
                sys.exit(ExitCode.INCOMPLETE)
            return
        if not manifest.ledger_path.exists():
            raise UsageError(f"{manifest.ledger_path}: no ledger yet; run the manifest first")
        if fmt == "html":
            with Ledger.open(manifest.ledger_path) as db:
                page = render_html(db, name=manifest.name, manifest=manifest_path)
            with open_output(output) as out:
                out.write(page)
            return
        with (
            Ledger.open(manifest.ledger_path, journal=manifest.limits.ledger_journal) as db,
            open_output(output) as out,
            contextlib.closing(db.iter_items(states)) as rows,
        ):
            _write(rows, out, fmt, failed_only, with_output=len(manifest.jobs) == 1)


def _write(
    rows: Iterable[ItemRow], out: IO[str], fmt: str, failed_only: bool, *, with_output: bool
) -> None:
    try:
        if failed_only:
            lines = failed_manifest(rows, with_output=with_output)
            csv.writer(out, lineterminator="\n").writerows(lines)
        else:
            write_report(rows, out, fmt)
        out.flush()
    except BrokenPipeError:
        # `picjobs report | head`: the reader has all it wanted.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)


def _shards_status(manifest_path: str, ledger: str | None, as_json: bool, count: int) -> None:
    with errors():
        manifest = load(manifest_path, ledger)
        info = shards_status(manifest, count)
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    read = count - len(info["missing"]) - len(info["unreadable"])
    click.echo(f"{manifest.name}: {info['total']} items in {read} of {count} shard ledgers")
    for state, n in info["counts"].items():
        click.echo(f"  {state:<11}{n:>9}")
    if info["running"]:
        eta = info["eta_seconds"]
        click.echo(f"  running at {info['rate']:g} jobs/s, ETA {'-' if eta is None else f'{eta}s'}")
    for problem in info["problems"]:
        click.echo(f"  {problem}")
