"""A whole run against an emulator that fails a quarter of CI requests in every way it can."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.cloud.client import CIClient, ClientSettings
from orchestrator.cloud.pacing import AdaptiveRateLimiter
from orchestrator.cloud.retry import Retrier, RetryPolicy
from orchestrator.emulator.faults import FaultConfig
from orchestrator.emulator.server import RunningEmulator
from orchestrator.engine.runner import RunReport, run
from orchestrator.ledger import Ledger
from orchestrator.manifest import load_manifest
from orchestrator.sources.listing import iter_prefix
from tests.engine.support import BUCKET, CREDS, OPTIONS, seed_as_links, write_manifest

# A client that gives up on an answer after READ_TIMEOUT, and latency spikes well beyond it.
READ_TIMEOUT = 0.3
SPIKE = 2 * READ_TIMEOUT
CHAOS = FaultConfig(
    error_503=0.10,
    error_429=0.05,
    error_500=0.05,  # outcome unknown: settled by listing jobs before any resend
    reset_after=0.03,  # the job is created, the answer is lost
    latency=0.01,  # held before it is handled; the client gives up, so no job is created
    latency_after=0.01,  # handled, then the answer is held; the client gives up on a created job
    latency_seconds=SPIKE,
    routes=("ci",),
    seed=20240501,
)


async def _run_impatiently(manifest_path: Path, emu: RunningEmulator) -> RunReport:
    manifest = load_manifest(manifest_path)
    settings = ClientSettings(
        BUCKET,
        "ap-guangzhou",
        CREDS,
        endpoint=emu.url,
        concurrency=manifest.limits.concurrency,
        read_timeout=READ_TIMEOUT,
        total_timeout=4 * SPIKE,
    )
    # Injected 429s come at a steady 5 % whatever the pace, so slowing down cannot make them
    # stop; the floor keeps the limiter from creeping down for the whole run (pacing under
    # real throttling is tested in test_run.py and test_pacing.py).
    limiter = AdaptiveRateLimiter(5000, min_rate=2000)
    with Ledger.open(manifest.ledger_path) as ledger:
        async with CIClient(settings, limiter=limiter) as client:
            return await run(manifest, ledger, client, OPTIONS)


@pytest.mark.slow
async def test_a_5000_job_run_through_a_quarter_of_failed_requests_ends_all_success_with_no_input_sent_twice(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    keys = [f"chaos/{i:04d}.png" for i in range(5000)]
    seed_as_links(emulator, data, keys)
    (tmp_path / "keys.csv").write_text("key\n" + "\n".join(keys) + "\n")
    manifest = write_manifest(tmp_path, 'csv = "keys.csv"', extra="[limits]\nconcurrency = 32\n")
    emulator.emulator.faults.configure(CHAOS)

    report = await _run_impatiently(manifest, emulator)

    stats = emulator.backend.stats.snapshot()
    assert report.exit_code == 0, report.message
    assert report.counts["success"] == 5000
    with Ledger.open(load_manifest(manifest).ledger_path) as ledger:
        rows = list(ledger.iter_items())
        assert ledger.integrity_check() == "ok"
    assert sorted(row.key for row in rows) == keys
    assert {str(row.state) for row in rows} == {"success"}
    assert stats["duplicate_submissions"] == 0
    assert stats["jobs_created"] == 5000
    assert sorted(s["input_object"] for s in stats["submissions"]) == keys
    posts = stats["faults_by_route"]["POST /pic_jobs"]
    for kind in ("error_503", "error_429", "error_500", "reset_after", "latency", "latency_after"):
        assert posts.get(kind, 0) > 0, f"no {kind} was injected into submissions"
    assert posts["abandoned"] > 0
    # Every submission either created its job or was stopped by a fault before it could.
    refused = sum(
        posts.get(kind, 0) for kind in ("error_503", "error_429", "error_500", "abandoned")
    )
    assert stats["requests"]["POST /pic_jobs"] == 5000 + refused
    # Every job was either answered or found again by reconciliation, never both; each one
    # whose answer was cut off after it was created was found again.
    assert report.submitted + report.adopted == 5000
    assert report.adopted >= posts["reset_after"]


async def test_listing_pages_refused_or_lost_by_cos_are_asked_for_again_and_every_key_comes_once(
    data: Path, emulator: RunningEmulator
) -> None:
    keys = [f"list/{i:04d}.png" for i in range(5000)]
    seed_as_links(emulator, data, keys)
    emulator.emulator.faults.configure(
        FaultConfig(
            error_503=0.2,  # COS throttles with 503 SlowDown
            error_500=0.1,
            reset_after=0.1,
            malformed=0.1,  # a 200 whose body is cut short
            routes=("GET /",),
            seed=4,
        )
    )
    settings = ClientSettings(BUCKET, "ap-guangzhou", CREDS, endpoint=emulator.url)

    async with CIClient(settings) as client:
        listing = iter_prefix(
            client, BUCKET, "list/", retrier=Retrier(RetryPolicy.for_tests(attempts=10))
        )
        pages = [page async for page in listing]

    assert [ref.key for page in pages for ref in page] == keys
    faults = emulator.backend.stats.snapshot()["faults"]
    assert set(faults) == {"error_503", "error_500", "reset_after", "malformed"}
    # One request per page, plus one for each that failed.
    assert emulator.backend.stats.snapshot()["requests"]["GET /"] == len(pages) + sum(
        faults.values()
    )
