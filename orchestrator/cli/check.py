"""`picjobs check MANIFEST`: the preflight, one line per check; exit 0, 1 (a check failed) or 2.

With --notify it also sends the test message of `picjobs notify-test` to every [notify] target,
one line per target.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable

import click

from orchestrator.cli._common import (
    EMBEDDED,
    common_options,
    credentials,
    make_client,
    manifest_argument,
    open_endpoint,
    setup_logging,
)
from orchestrator.cloud.client import CIClient
from orchestrator.cloud.credentials import CredentialProvider
from orchestrator.engine.preflight import Check, Status, preflight
from orchestrator.exceptions import ManifestError
from orchestrator.exit_codes import ExitCode
from orchestrator.manifest import Manifest, load_manifest
from orchestrator.notify import Notifier

__all__ = ["check_command"]


@click.command("check")
@manifest_argument
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of lines.")
@click.option(
    "--notify",
    "test_notify",
    is_flag=True,
    help="Also send a test message to every [notify] target (the heartbeat is not pinged).",
)
@common_options
def check_command(
    manifest_path: str, as_json: bool, test_notify: bool, quiet: bool, log_format: str
) -> None:
    """Check credentials, clock, bucket, CI, queue, template and rate; make no job.

    Exit codes: 0 every check passed, 1 one failed, 2 the manifest is not valid.
    """
    setup_logging(True, log_format)  # the check lines say it all; warnings still show
    try:
        manifest = load_manifest(manifest_path)
    except ManifestError as exc:
        _print([Check("manifest", Status.FAIL, str(exc), "fix the manifest")], as_json)
        raise SystemExit(ExitCode.USAGE) from None
    checks = asyncio.run(_checks(manifest))
    if test_notify:
        checks += _notify_checks(manifest)
    _print(checks, as_json)
    failed = any(check.status is Status.FAIL for check in checks)
    raise SystemExit(ExitCode.FAILED if failed else ExitCode.OK)


async def _checks(manifest: Manifest) -> list[Check]:
    endpoint = os.environ.get("PICJOBS_ENDPOINT") or manifest.target.endpoint

    def connect(url: str | None) -> Callable[[CredentialProvider], CIClient]:
        return lambda provider: make_client(manifest, url, provider)

    if endpoint == EMBEDDED:
        async with open_endpoint(manifest) as (url, provider):
            return await preflight(manifest, _given(provider), connect(url))
    target = manifest.target
    return await preflight(
        manifest, lambda: credentials(target.credentials, target.profile), connect(endpoint)
    )


def _notify_checks(manifest: Manifest) -> list[Check]:
    """One line per [notify] target: did it take the test message (named, never its URL)."""
    if not manifest.notify.urls:
        return [Check("notify", Status.FAIL, "[notify] has no urls", "add urls to [notify]")]
    return [
        Check("notify", Status.OK, f"{result.target}: took the test message")
        if result.ok
        else Check(
            "notify",
            Status.FAIL,
            f"{result.target}: {result.reason}",
            "check that [notify] url and that this host can reach it",
        )
        for result in Notifier(manifest.notify).test(manifest.name)
    ]


def _given(provider: CredentialProvider) -> Callable[[], Awaitable[CredentialProvider]]:
    async def resolve() -> CredentialProvider:
        return provider

    return resolve


def _print(checks: list[Check], as_json: bool) -> None:
    if as_json:
        ok = all(check.status is not Status.FAIL for check in checks)
        click.echo(json.dumps({"ok": ok, "checks": [c.as_dict() for c in checks]}, indent=2))
        return
    width = max(len(check.name) for check in checks)
    for check in checks:
        line = f"{check.status.value:<4}  {check.name:<{width}}  {check.detail}"
        if check.fix:
            line += f"; {check.fix}"
        click.echo(line)
