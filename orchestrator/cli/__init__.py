"""The `picjobs` command line: one module per command, sharing `_common`."""

from __future__ import annotations

import click

from orchestrator.cli.cancel import cancel_command
from orchestrator.cli.check import check_command
from orchestrator.cli.emulator import emulator_command
from orchestrator.cli.notify import notify_test_command
from orchestrator.cli.queue import queue_group
from orchestrator.cli.report import report_command, status_command
from orchestrator.cli.run import run_command

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="picjobs")
def cli() -> None:
    """Bulk image processing on Tencent Cloud Infinite, tracked in a SQLite ledger."""


for _command in (
    check_command,
    run_command,
    status_command,
    report_command,
    cancel_command,
    queue_group,
    emulator_command,
    notify_test_command,
):
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="picjobs")
