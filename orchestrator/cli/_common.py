"""What every command shares: error mapping, logging, credentials, endpoints, options."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import secrets
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import click

from orchestrator.cloud.client import CIClient, ClientSettings
from orchestrator.cloud.credentials import CredentialProvider, resolve_credentials
from orchestrator.cloud.pacing import AdaptiveRateLimiter
from orchestrator.cloud.signing import Credentials
from orchestrator.exceptions import CIError, Disposition, PicjobsError
from orchestrator.exit_codes import ExitCode
from orchestrator.manifest import EMBEDDED_ENDPOINT, Manifest, load_manifest

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("orchestrator")
EMBEDDED = EMBEDDED_ENDPOINT


@contextlib.contextmanager
def errors(note: Callable[[str], None] | None = None) -> Iterator[None]:
    """Our errors become one line on stderr and their exit code; no traceback for bad input.

    `note` also hears the line (a nightly run's notification quotes it)."""
    try:
        yield
    except CIError as exc:
        # A service that is down now may be up tonight: what is recorded stays, so say resumable.
        transient = exc.disposition is not Disposition.PERMANENT
        hint = "; run again to resume" if transient else ""
        _say(f"{exc}{hint}", note)
        sys.exit(ExitCode.INCOMPLETE if transient else exc.exit_code)
    except PicjobsError as exc:
        _say(str(exc), note)
        sys.exit(exc.exit_code)


def _say(error: str, note: Callable[[str], None] | None) -> None:
    click.echo(f"picjobs: error: {error}", err=True)
    if note is not None:
        note(error)


def setup_logging(quiet: bool, log_format: str) -> None:
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


async def credentials(choice: str = "auto", profile: str | None = None) -> CredentialProvider:
    """The credentials `[target] credentials` names; CredentialsError (exit 2) saying why not."""
    return await resolve_credentials(choice, profile=profile)


def load(manifest_path: str, ledger: str | None) -> Manifest:
    manifest = load_manifest(manifest_path)
    if ledger:
        manifest = dataclasses.replace(manifest, ledger_path=Path(ledger).resolve())
    return manifest


@contextlib.asynccontextmanager
async def open_endpoint(
    manifest: Manifest,
) -> AsyncIterator[tuple[str | None, CredentialProvider]]:
    """Where to send requests, with which credentials; starts the embedded emulator if asked."""
    endpoint = os.environ.get("PICJOBS_ENDPOINT") or manifest.target.endpoint
    if endpoint != EMBEDDED:
        yield endpoint, await credentials(manifest.target.credentials, manifest.target.profile)
        return
    from orchestrator.demo import seed_demo_bucket
    from orchestrator.emulator.server import EmulatorConfig, running_emulator

    data = manifest.path.parent / ".picjobs" / f"{manifest.name}-data"
    seed_demo_bucket(data, manifest.target.bucket)
    for bucket in manifest.output_buckets:
        (data / bucket).mkdir(parents=True, exist_ok=True)
    creds = Credentials("AKID" + secrets.token_hex(16), secrets.token_hex(16))
    config = EmulatorConfig(
        data_dir=data,
        default_bucket=manifest.target.bucket,
        region=manifest.target.region,
        credentials=creds,
    )
    async with running_emulator(config) as emu:
        log.info("embedded emulator at %s serving %s", emu.url, data)
        yield emu.url, CredentialProvider.static(creds)


def make_client(manifest: Manifest, endpoint: str | None, creds: CredentialProvider) -> CIClient:
    target = manifest.target
    settings = ClientSettings(
        bucket=target.bucket,
        region=target.region,
        credentials=creds.current.credentials,
        endpoint=endpoint,
        concurrency=manifest.limits.concurrency,
        ci_endpoint=target.ci_endpoint,
        cos_endpoint=target.cos_endpoint,
    )
    limiter = AdaptiveRateLimiter(manifest.limits.rate)
    return CIClient(settings, limiter=limiter, credentials=creds)


@contextlib.asynccontextmanager
async def connect(manifest: Manifest) -> AsyncIterator[CIClient]:
    """A client for the manifest's target (starting the embedded emulator if it names one)."""
    async with (
        open_endpoint(manifest) as (endpoint, creds),
        make_client(manifest, endpoint, creds) as client,
    ):
        yield client


def common_options(fn: F) -> F:
    fn = click.option("--quiet", "-q", is_flag=True, help="Errors and the final summary only.")(fn)
    return click.option(
        "--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True
    )(fn)


@contextlib.contextmanager
def open_output(path: str | None) -> Iterator[Any]:
    if path is None:
        yield sys.stdout
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8", newline="") as out:
        yield out


class Duration(click.ParamType[float]):
    """`90`, `90s`, `30m`, `6h`, `1h30m`, `2d`: a duration in seconds."""

    name = "duration"
    _UNITS: ClassVar[dict[str, int]] = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    _PATTERN = re.compile(r"(\d+(?:\.\d+)?)([dhms])")

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, int | float):
            return float(value)
        text = str(value).strip().lower()
        try:
            return float(text)
        except ValueError:
            pass
        parts = self._PATTERN.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            self.fail(f"{value!r} is not a duration like 90s, 30m, 6h or 1h30m", param, ctx)
        return sum(float(n) * self._UNITS[u] for n, u in parts)


manifest_argument = click.argument(
    "manifest_path", metavar="MANIFEST", type=click.Path(dir_okay=False)
)
ledger_option = click.option("--ledger", help="Ledger path (default: from the manifest).")
