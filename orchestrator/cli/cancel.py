"""`picjobs cancel`: cancel the jobs of a manifest that CI has not started, and record it."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import asdict

import click

from orchestrator.cli._common import (
    common_options,
    connect,
    errors,
    ledger_option,
    load,
    manifest_argument,
    setup_logging,
)
from orchestrator.engine.cancel import cancel
from orchestrator.exceptions import UsageError
from orchestrator.ledger import Ledger

__all__ = ["cancel_command"]


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
        with Ledger.open(
            manifest.ledger_path,
            synchronous=manifest.ledger_sync,
            journal=manifest.limits.ledger_journal,
        ) as db:
            db.lock()
            report = asyncio.run(cancel(db, lambda: connect(manifest), pending=pending))
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
