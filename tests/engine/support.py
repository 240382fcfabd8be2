"""Helpers for engine tests: a seeded bucket, manifests, and one run of the real engine."""

from __future__ import annotations

import asyncio
import io
import os
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path

from PIL import Image

from orchestrator.cloud.client import CIClient, ClientSettings
from orchestrator.cloud.pacing import AdaptiveRateLimiter
from orchestrator.cloud.retry import RetryPolicy
from orchestrator.cloud.signing import Credentials
from orchestrator.emulator.server import RunningEmulator
from orchestrator.engine.runner import RunOptions, RunReport, run
from orchestrator.engine.submitter import JobTemplate
from orchestrator.items import Item
from orchestrator.ledger import Ledger
from orchestrator.manifest import Manifest, load_manifest

BUCKET = "photos-1250000000"
CREDS = Credentials("AKIDengineTests0001", "engine-test-secret-key")
OPTIONS = RunOptions(
    policy=RetryPolicy.for_tests(), poll_min=0.01, poll_max=0.05, progress_every=3600
)


def _tiny_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


TINY = _tiny_png()


def seed(emu: RunningEmulator, data: Path, keys: Iterable[str]) -> None:
    """Put small images into the bucket folder, then have the emulator rescan it."""
    for key in keys:
        path = data / BUCKET / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(TINY)
    emu.emulator.reset()


def seed_as_links(emu: RunningEmulator, data: Path, keys: Iterable[str]) -> None:
    """Like `seed`, with hard links to one image: creating thousands of files is the slow part."""
    original = data.parent / "tiny.png"
    original.write_bytes(TINY)
    for key in keys:
        path = data / BUCKET / key
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(original, path)
        except OSError:  # a file system without hard links
            path.write_bytes(TINY)
    emu.emulator.reset()


def write_manifest(
    folder: Path,
    source: str,
    job: str = 'process_rule = "imageMogr2/rotate/90"\noutput = "out/{key}"',
    extra: str = "",
) -> Path:
    path = folder / "m.toml"
    path.write_text(
        textwrap.dedent(
            f"""\
            name = "t"
            [target]
            bucket = "{BUCKET}"
            region = "ap-guangzhou"
            [source]
            """
        )
        + source
        + "\n[job]\n"
        + job
        + "\n"
        + extra
    )
    return path


async def run_manifest(
    manifest: Manifest | Path,
    emu: RunningEmulator,
    options: RunOptions = OPTIONS,
    rate: float = 5000,
) -> tuple[RunReport, AdaptiveRateLimiter]:
    if isinstance(manifest, Path):
        manifest = load_manifest(manifest)
    limiter = AdaptiveRateLimiter(rate)
    settings = ClientSettings(
        BUCKET, "ap-guangzhou", CREDS, endpoint=emu.url, concurrency=manifest.limits.concurrency
    )
    with Ledger.open(manifest.ledger_path) as ledger:
        async with CIClient(settings, limiter=limiter) as client:
            report = await run(manifest, ledger, client, options)
    return report, limiter


def numbered_items(keys: Sequence[str], width: int) -> list[Item]:
    """One item per key in the default bucket: `id-0007` writing `out/0007.png` (`width` 4)."""
    return [
        Item(f"id-{i:0{width}d}", BUCKET, key, BUCKET, "ap-guangzhou", f"out/{i:0{width}d}.png", 0)
        for i, key in enumerate(keys)
    ]


async def submit_each(
    client: CIClient, template: JobTemplate, items: Iterable[Item], *, at_once: int = 16
) -> list[str]:
    """Submit every item straight through the client, `at_once` at a time: their JobIds."""
    sem = asyncio.Semaphore(at_once)

    async def submit(item: Item) -> str:
        async with sem:
            return (await client.submit(template.request(item))).job_id

    return await asyncio.gather(*(submit(item) for item in items))
