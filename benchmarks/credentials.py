"""A run under rotating temporary credentials and/or a skewed clock, measured.

    python -m benchmarks.credentials --jobs 2000 --lifetime 30 --rate 20
    python -m benchmarks.credentials --jobs 2000 --lifetime 30 --rate 20 --clock-skew 1200

The emulator runs in its own thread (as a real service would be apart from the client), issues
credentials valid for `--lifetime` seconds from its metadata service (rotating at half-life),
and counts what it refused. At `--rate 20`, 2,000 jobs take about 100 s: several lifetimes of
30 s. Prints one JSON document: jobs by state, refusals by code, metadata fetches, rotations.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.request import urlopen

from PIL import Image

from orchestrator.cloud.client import CIClient, ClientSettings
from orchestrator.cloud.credentials import resolve_credentials
from orchestrator.cloud.pacing import AdaptiveRateLimiter
from orchestrator.emulator.metadata import METADATA_PREFIX
from orchestrator.emulator.server import EmulatorConfig, EmulatorThread
from orchestrator.engine.runner import RunOptions, run
from orchestrator.ledger import Ledger
from orchestrator.manifest import load_manifest

BUCKET = "rotation-1250000000"
# COS says AccessDenied "Request has expired" for a skewed clock, CI SignatureExpired.
_SKEW = ("RequestTimeTooSkewed", "SignatureExpired", "AccessDenied")


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), (90, 60, 30)).save(buf, "PNG")
    return buf.getvalue()


async def _run(url: str, folder: Path, rate: float, concurrency: int) -> dict[str, int]:
    path = folder / "rotation.toml"
    path.write_text(
        f'name = "rotation"\n[target]\nbucket = "{BUCKET}"\nregion = "ap-guangzhou"\n'
        f'endpoint = "{url}"\ncredentials = "cvm-role"\n[source]\nprefix = "img/"\n'
        '[job]\nprocess_rule = "imageMogr2/rotate/90"\noutput = "out/{key}"\n'
        f"[limits]\nrate = {rate}\nconcurrency = {concurrency}\n"
    )
    manifest = load_manifest(path)
    provider = await resolve_credentials(
        "cvm-role", environ={"PICJOBS_METADATA_ENDPOINT": url + METADATA_PREFIX}
    )
    settings = ClientSettings(
        BUCKET, "ap-guangzhou", provider.current.credentials, endpoint=url, concurrency=concurrency
    )
    options = RunOptions(poll_min=0.2, poll_max=1.0, progress_every=3600)
    with Ledger.open(manifest.ledger_path) as ledger:
        async with CIClient(
            settings, limiter=AdaptiveRateLimiter(rate), credentials=provider
        ) as client:
            report = await run(manifest, ledger, client, options)
    counts = dict(report.counts)
    counts["client_refreshes"] = provider.refreshes
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.credentials")
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--lifetime", type=float, default=30.0)
    parser.add_argument("--clock-skew", type=float, default=0.0)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        png = _png()
        for i in range(args.jobs):
            target = data / BUCKET / "img" / f"{i:05d}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(png)
        config = EmulatorConfig(
            data_dir=data,
            default_bucket=BUCKET,
            rate=None,
            temporary_credentials=args.lifetime,
            clock_skew=args.clock_skew,
        )
        with EmulatorThread(config) as emu:
            started = time.monotonic()
            counts = asyncio.run(_run(emu.url, Path(tmp), args.rate, args.concurrency))
            seconds = time.monotonic() - started
            with urlopen(f"{emu.url}/_emulator/stats") as answer:
                stats: dict[str, Any] = json.load(answer)
    errors = stats["errors"]
    creds = stats["credentials"]
    result = {
        "jobs": args.jobs,
        "lifetime_s": args.lifetime,
        "clock_skew_s": args.clock_skew,
        "seconds": round(seconds, 1),
        "success": counts.get("success", 0),
        "refused_expired": creds.get("expired_refusals", 0),
        "refused_skew": sum(errors.get(code, 0) for code in _SKEW)
        - creds.get("expired_refusals", 0),
        "credentials_issued": creds.get("issued", 0),
        "client_refreshes": counts["client_refreshes"],
        "metadata_fetches": creds.get("metadata_role", 0) + creds.get("metadata_credentials", 0),
        "errors": errors,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
