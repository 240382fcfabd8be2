"""`picjobs emulator`: serve the local emulator of CI and COS."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from orchestrator.cli._common import errors
from orchestrator.cloud.signing import Credentials


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
    temporary: float | None,
    clock_skew: float,
) -> None:
    """Serve a local emulator of the CI pic-job, queue and COS listing APIs."""
    from orchestrator.emulator.server import config_from_env, serve_forever

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
            temporary_credentials=temporary,
            clock_skew=clock_skew,
        )
        serve_forever(config, host, port)
