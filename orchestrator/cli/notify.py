"""`picjobs notify-test`: send a test message to every `[notify]` target and say which worked."""

from __future__ import annotations

import json
import sys

import click

from orchestrator.cli._common import errors, load, manifest_argument
from orchestrator.exceptions import UsageError
from orchestrator.exit_codes import ExitCode
from orchestrator.notify import Notifier

__all__ = ["notify_test_command"]


@click.command("notify-test")
@manifest_argument
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of lines.")
def notify_test_command(manifest_path: str, as_json: bool) -> None:
    """Send a test message to every [notify] url of MANIFEST (the heartbeat is not pinged).

    Exit codes: 0 every target took it, 1 one did not, 2 manifest error or no [notify] urls.
    """
    with errors():
        manifest = load(manifest_path, None)
        if not manifest.notify.urls:
            raise UsageError(f"{manifest.path}: [notify] urls: no notification target to test")
        results = Notifier(manifest.notify).test(manifest.name)
    if as_json:
        body = [{"target": r.target, "ok": r.ok, "reason": r.reason} for r in results]
        click.echo(json.dumps({"targets": body}, ensure_ascii=False))
    else:
        for result in results:
            status = "ok" if result.ok else f"FAIL  {result.reason}"
            click.echo(f"{result.target}: {status}")
    sys.exit(ExitCode.OK if all(r.ok for r in results) else ExitCode.FAILED)
