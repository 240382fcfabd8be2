"""Against the emulator: a submission whose answer straggles, or whose connection drops, is looked
up while it is too young to settle, its job adopted as soon as a lookup shows it, and never sent
again because of the lookup; a few unknown items are looked up one by one rather than by
listing their window."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.cloud.client import CIClient, ClientSettings
from orchestrator.cloud.pacing import AdaptiveRateLimiter
from orchestrator.cloud.retry import Retrier, RetryPolicy
from orchestrator.emulator.faults import FaultConfig
from orchestrator.emulator.server import RunningEmulator
from orchestrator.engine.processing import Processing
from orchestrator.engine.reconcile import FEW, Reconciler
from orchestrator.engine.runner import RunReport, run
from orchestrator.engine.submitter import JobTemplate
from orchestrator.items import Item
from orchestrator.ledger import Ledger, State
from orchestrator.manifest import load_manifest
from tests.engine.support import (
    BUCKET,
    CREDS,
    OPTIONS,
    numbered_items,
    seed_as_links,
    submit_each,
    write_manifest,
)

# Far longer than any of these runs: only a lookup can settle a request that waits this long.
NEVER = 600.0


def _patient(emulator: RunningEmulator) -> ClientSettings:
    """A client that waits `NEVER` seconds for an answer, and takes a request for a straggler
    after 50 ms."""
    return ClientSettings(
        BUCKET,
        "ap-guangzhou",
        CREDS,
        endpoint=emulator.url,
        read_timeout=NEVER,
        min_read_timeout=NEVER,
        total_timeout=NEVER,
        straggler_after=0.05,
    )


async def _run(tmp_path: Path, emulator: RunningEmulator, keys: list[str]) -> RunReport:
    (tmp_path / "keys.csv").write_text("key\n" + "\n".join(keys) + "\n")
    manifest = load_manifest(write_manifest(tmp_path, 'csv = "keys.csv"'))
    with Ledger.open(manifest.ledger_path) as ledger:
        async with CIClient(_patient(emulator), limiter=AdaptiveRateLimiter(5000)) as client:
            # The guard is far below the wait for an answer that never comes.
            return await asyncio.wait_for(run(manifest, ledger, client, OPTIONS), timeout=120)


def _outcomes(tmp_path: Path) -> list[tuple[str, str]]:
    manifest = load_manifest(tmp_path / "m.toml")
    with Ledger.open(manifest.ledger_path) as ledger:
        return ledger.connection.execute(
            "SELECT item_id, outcome FROM attempts_log ORDER BY item_id, rowid"
        ).fetchall()


async def test_a_submission_whose_answer_never_comes_is_adopted_from_a_lookup_and_not_sent_again(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    keys = [f"lost/{i:03d}.png" for i in range(60)]
    seed_as_links(emulator, data, keys)
    # These jobs are created and their answers never come: the client would wait NEVER seconds.
    emulator.emulator.faults.configure(
        FaultConfig(lost=0.2, lost_seconds=NEVER, routes=("POST /pic_jobs",), seed=5)
    )

    report = await _run(tmp_path, emulator, keys)

    stats = emulator.backend.stats.snapshot()
    lost = stats["faults"]["lost"]
    assert report.exit_code == 0, report.message
    assert report.counts["success"] == 60
    assert lost >= 5
    assert stats["duplicate_submissions"] == 0
    assert stats["requests"]["POST /pic_jobs"] == 60  # one each: nothing was sent again
    assert report.adopted == lost
    outcomes = [outcome for _, outcome in _outcomes(tmp_path)]
    # How the stopped requests would have ended is not recorded: no unknown, no release.
    assert outcomes.count("adopted") == lost
    assert "unknown" not in outcomes


async def test_a_straggling_submission_whose_job_is_not_there_yet_is_neither_released_nor_sent_again(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    keys = [f"slow/{i:03d}.png" for i in range(40)]
    seed_as_links(emulator, data, keys)
    # Held a second before anything happens: lookups meanwhile find no job.
    emulator.emulator.faults.configure(
        FaultConfig(latency=0.25, latency_seconds=1.0, routes=("POST /pic_jobs",), seed=2)
    )

    report = await _run(tmp_path, emulator, keys)

    stats = emulator.backend.stats.snapshot()
    assert report.exit_code == 0, report.message
    assert report.counts["success"] == 40
    assert stats["faults"]["latency"] >= 3
    assert stats["requests"]["GET /pic_jobs"] >= 1  # the stragglers were looked up
    assert stats["requests"]["POST /pic_jobs"] == 40
    assert stats["duplicate_submissions"] == 0
    assert report.adopted == 0
    assert {outcome for _, outcome in _outcomes(tmp_path)} == {"submitted", "success"}


async def test_a_few_unknown_items_are_looked_up_one_by_one_rather_than_by_listing_their_window(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    keys = [f"few/{i:04d}.png" for i in range(500)]
    seed_as_links(emulator, data, keys)
    items = numbered_items(keys, 4)
    settings = ClientSettings(BUCKET, "ap-guangzhou", CREDS, endpoint=emulator.url)
    with Ledger.open(tmp_path / "ledger.sqlite") as ledger:
        ledger.add_items(items)
        async with CIClient(settings) as client:
            queue_id = (await client.list_queues())[0].queue_id
            template = JobTemplate(queue_id, None, "imageMogr2/rotate/90", False)
            since = datetime.now(UTC)
            claimed = ledger.claim(500)
            # 500 jobs in the window (five pages); FEW of them unknown, half with a job.
            job_ids = await submit_each(client, template, claimed[: 500 - FEW // 2])
            ledger.mark_submitted(
                [
                    (item.item_id, job)
                    for item, job in zip(claimed, job_ids[: 500 - FEW], strict=False)
                ]
            )
            unknown = claimed[500 - FEW :]
            ledger.mark_unknown(item.item_id for item in unknown)
            lists_before = emulator.backend.stats.requests["GET /pic_jobs"]
            reconciler = Reconciler(
                client, ledger, queue_id, retrier=Retrier(RetryPolicy.for_tests())
            )

            unsettled = await reconciler.settle(since, datetime.now(UTC))

        assert unsettled == 0
        assert (reconciler.adopted, reconciler.released) == (FEW // 2, FEW // 2)
        # One request per item, each filtered by its input object: no page of the window.
        assert emulator.backend.stats.requests["GET /pic_jobs"] - lists_before == FEW
        assert reconciler.list_requests == FEW
        assert ledger.counts()[State.PENDING] == FEW // 2


async def test_a_submission_whose_connection_drops_after_its_job_is_made_is_adopted_before_it_could_be_settled(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    keys = [f"reset/{i:03d}.png" for i in range(60)]
    seed_as_links(emulator, data, keys)
    (tmp_path / "keys.csv").write_text("key\n" + "\n".join(keys) + "\n")
    manifest = load_manifest(write_manifest(tmp_path, 'csv = "keys.csv"'))
    items = [
        Item(f"id-{i:03d}", BUCKET, key, BUCKET, "ap-guangzhou", f"out/{key}", 0)
        for i, key in enumerate(keys)
    ]
    # The job is made, then the connection drops: the outcome is unknown at once.
    emulator.emulator.faults.configure(
        FaultConfig(reset_after=0.2, routes=("POST /pic_jobs",), seed=4)
    )
    settings = ClientSettings(BUCKET, "ap-guangzhou", CREDS, endpoint=emulator.url)
    with Ledger.open(manifest.ledger_path) as ledger:
        ledger.add_items(items)
        async with CIClient(settings, limiter=AdaptiveRateLimiter(5000)) as client:
            retrier = Retrier(RetryPolicy.for_tests())
            queue = (await client.list_queues())[0]
            # Settling would wait NEVER seconds: only the lookups beside it can adopt them.
            processing = Processing(
                manifest,
                ledger,
                client,
                queue,
                retrier,
                poll_min=0.01,
                poll_max=0.05,
                settle_after=NEVER,
            )
            await asyncio.wait_for(processing.run(asyncio.Event()), timeout=120)
        counts = ledger.counts()

    stats = emulator.backend.stats.snapshot()
    dropped = stats["faults"]["reset_after"]
    assert counts[State.SUCCESS] == 60
    assert dropped >= 5
    assert stats["requests"]["POST /pic_jobs"] == 60
    assert stats["duplicate_submissions"] == 0
    assert (processing.reconciler.spotted, processing.reconciler.released) == (dropped, 0)
