"""`picjobs emulator`: serve the local emulator of CI and COS."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from orchestrator.cli._common import errors
from orchestrator.cloud.signing import Credentials

if TYPE_CHECKING:
    from orchestrator.emulator.server import RunningEmulator


@click.command("emulator")
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
@click.option(
    "--no-output-bytes",
    "discard_outputs",
    is_flag=True,
    help="Answer every job as usual but store no output object (for benchmarking a client).",
)
@click.option(
    "--allow-callbacks-to",
    "allow_callbacks",
    multiple=True,
    metavar="ADDRESS|NETWORK|HOST|public",
    help="Where job callbacks may go besides loopback; repeat for several. A private address "
    "only if an address or network here covers it.",
)
@click.option(
    "--temporary-credentials",
    "temporary",
    type=float,
    metavar="SECONDS",
    help="Serve the CVM metadata endpoints and a fake STS issuing credentials valid this long.",
)
@click.option(
    "--clock-skew",
    type=float,
    default=0.0,
    metavar="SECONDS",
    help="Shift the emulator's clock, Date headers and signature window.",
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
    discard_outputs: bool,
    allow_callbacks: tuple[str, ...],
    temporary: float | None,
    clock_skew: float,
) -> None:
    """Serve a local emulator of the CI pic-job, queue, template and COS object APIs.

    On start it prints the `endpoint = ...` line for a manifest and the `CosConfig(...)` line
    for Tencent's official Python SDK.
    """
    from orchestrator.emulator.callbacks import CallbackPolicy
    from orchestrator.emulator.server import config_from_env, serve_forever

    try:
        callbacks = CallbackPolicy(allow=allow_callbacks)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--allow-callbacks-to") from None
    with errors():
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
            write_outputs=not discard_outputs,
            callbacks=callbacks,
            temporary_credentials=temporary,
            clock_skew=clock_skew,
        )

        def ready(running: RunningEmulator) -> None:
            for line in start_lines(running, signed=config.credentials is not None):
                click.echo(line)
            sys.stdout.flush()

        serve_forever(config, host, port, ready=ready)


def start_lines(running: RunningEmulator, *, signed: bool) -> list[str]:
    """The manifest's endpoint line and the official SDK's CosConfig line for this emulator."""
    # Listening on every address: clients on this machine reach it on loopback.
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(running.host, running.host)
    shown = f"[{host}]" if ":" in host else host
    backend = running.backend
    keys = (
        'SecretId=os.environ["COS_SECRET_ID"], SecretKey=os.environ["COS_SECRET_KEY"]'
        if signed
        else 'SecretId="any", SecretKey="any"'  # signatures are not checked
    )
    return [
        f'endpoint = "http://{shown}:{running.port}"   '
        f'# bucket = "{backend.default_bucket}", region = "{backend.region}"',
        f'CosConfig(Region="{backend.region}", {keys}, IP="{host}", Port={running.port}, '
        'Scheme="http")',
    ]
