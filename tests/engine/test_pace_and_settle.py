"""Against the emulator: unknown outcomes settle in bulk, few items are claimed ahead of the
pace, and requests whose answers are lost do not hold up the others."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.cloud.client import CIClient, ClientSettings
from orchestrator.cloud.models import JobRequest
from orchestrator.cloud.pacing import AdaptiveRateLimiter
from orchestrator.cloud.retry import Retrier, RetryPolicy
from orchestrator.emulator.faults import FaultConfig
from orchestrator.emulator.server import RunningEmulator
from orchestrator.engine.reconcile import Reconciler
from orchestrator.engine.runner import run
from orchestrator.engine.submitter import JobTemplate
from orchestrator.exceptions import ReadTimeout
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


@contextlib.asynccontextmanager
async def sampling(sample: Callable[[], None]) -> AsyncIterator[None]:
    """Call `sample` from the event loop every few milliseconds while the block runs."""

    async def loop() -> None:
        while True:
            sample()
            await asyncio.sleep(0.005)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sample()


async def test_200_unknown_items_among_1000_jobs_of_their_window_settle_in_at_most_10_list_requests(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    keys = [f"bulk/{i:04d}.png" for i in range(1000)]
    seed_as_links(emulator, data, keys)
    items = numbered_items(keys, 4)
    settings = ClientSettings(BUCKET, "ap-guangzhou", CREDS, endpoint=emulator.url)
    with Ledger.open(tmp_path / "ledger.sqlite") as ledger:
        ledger.add_items(items)
        async with CIClient(settings) as client:
            queue_id = (await client.list_queues())[0].queue_id
            template = JobTemplate(queue_id, None, "imageMogr2/rotate/90", False)
            since = datetime.now(UTC)
            claimed = ledger.claim(1000)
            # 800 answered, 100 created with their answers lost, 100 never reached CI.
            job_ids = await submit_each(client, template, claimed[:900])
            ledger.mark_submitted(
                [(item.item_id, job) for item, job in zip(claimed[:800], job_ids, strict=False)]
            )
            ledger.mark_unknown(item.item_id for item in claimed[800:])
            lost = dict(
                zip((item.item_id for item in claimed[800:900]), job_ids[800:], strict=True)
            )
            lists_before = emulator.backend.stats.requests["GET /pic_jobs"]

            reconciler = Reconciler(
                client, ledger, queue_id, retrier=Retrier(RetryPolicy.for_tests())
            )
            unsettled = await reconciler.settle(since, datetime.now(UTC))

        list_requests = emulator.backend.stats.requests["GET /pic_jobs"] - lists_before
        adopted = dict(
            ledger.connection.execute(
                "SELECT item_id, job_id FROM items WHERE item_id >= 'id-0800' AND state = ?",
                (State.SUBMITTED,),
            ).fetchall()
        )
        assert unsettled == 0
        assert list_requests <= 10
        assert adopted == lost
        assert ledger.counts()[State.PENDING] == 100
        assert (reconciler.adopted, reconciler.released) == (100, 100)


async def test_a_run_paced_at_30_per_second_holds_about_one_second_of_work_claimed(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    rate = 30
    keys = [f"paced/{i:04d}.png" for i in range(120)]
    seed_as_links(emulator, data, keys)
    (tmp_path / "keys.csv").write_text("key\n" + "\n".join(keys) + "\n")
    manifest = load_manifest(write_manifest(tmp_path, 'csv = "keys.csv"'))
    settings = ClientSettings(BUCKET, "ap-guangzhou", CREDS, endpoint=emulator.url)
    claimed_at_once: list[int] = []

    with Ledger.open(manifest.ledger_path) as ledger:

        def sample() -> None:
            claimed_at_once.append(ledger.counts()[State.SUBMITTING])

        limiter = AdaptiveRateLimiter(rate)
        async with CIClient(settings, limiter=limiter) as client, sampling(sample):
            report = await run(manifest, ledger, client, OPTIONS)

    assert report.exit_code == 0, report.message
    assert report.counts["success"] == 120
    # Claimed and not yet answered: about one second of work, however long the run.
    assert max(claimed_at_once) <= rate + 5
    assert max(claimed_at_once) >= 5


async def test_requests_whose_answers_are_lost_do_not_stop_the_others_while_they_hang(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    keys = [f"lost/{i:04d}.png" for i in range(120)]
    seed_as_links(emulator, data, keys)
    (tmp_path / "keys.csv").write_text("key\n" + "\n".join(keys) + "\n")
    manifest = load_manifest(
        write_manifest(tmp_path, 'csv = "keys.csv"', extra="[limits]\nconcurrency = 2\n")
    )
    # One submission in ten creates its job and never gets its answer before the client's
    # read timeout: with two connections, two such at once would stall every other request.
    emulator.emulator.faults.configure(
        FaultConfig(latency_after=0.1, latency_seconds=1.5, routes=("POST /pic_jobs",), seed=7)
    )
    settings = ClientSettings(
        BUCKET,
        "ap-guangzhou",
        CREDS,
        endpoint=emulator.url,
        concurrency=2,
        read_timeout=1.0,
        straggler_after=0.05,
    )
    posts = emulator.backend.stats.requests
    samples: list[tuple[int, int]] = []  # (requests hanging past their slot, POSTs received)

    with Ledger.open(manifest.ledger_path) as ledger:
        async with CIClient(settings, limiter=AdaptiveRateLimiter(5000)) as client:

            def sample() -> None:
                samples.append((client.stragglers, posts["POST /pic_jobs"]))

            async with sampling(sample):
                report = await run(manifest, ledger, client, OPTIONS)

    stats = emulator.backend.stats.snapshot()
    assert report.exit_code == 0, report.message
    assert report.counts["success"] == 120
    assert stats["duplicate_submissions"] == 0
    assert stats["faults"]["latency_after"] >= 2
    # While at least as many requests hung as there are connections, others were still sent.
    sent_while_hung = sum(
        later[1] - earlier[1]
        for earlier, later in itertools.pairwise(samples)
        if earlier[0] >= 2 and later[0] >= 2
    )
    assert sent_while_hung > 0


def _learning(emulator: RunningEmulator, *, straggler_after: float = 2.0) -> ClientSettings:
    """Settings whose read timeout is learnt down to 0.3 s from the configured 30 s."""
    return ClientSettings(
        BUCKET,
        "ap-guangzhou",
        CREDS,
        endpoint=emulator.url,
        read_timeout=30.0,
        min_read_timeout=0.3,
        straggler_after=straggler_after,
    )


async def test_a_lost_answer_costs_the_learnt_timeout_not_the_configured_read_timeout(
    emulator: RunningEmulator,
) -> None:
    async with CIClient(_learning(emulator)) as client:
        for _ in range(16):
            await client.list_queues()
        emulator.emulator.faults.configure(FaultConfig(lost=1.0, routes=("ci",), seed=1))
        # The guard is far above the learnt timeout and far below the configured one.
        with pytest.raises(ReadTimeout):
            await asyncio.wait_for(client.list_queues(), timeout=15)
    assert emulator.backend.stats.snapshot()["faults"]["lost"] == 1


async def test_a_request_sent_before_the_timeout_was_learnt_is_cut_at_the_learnt_one_once_it_straggles(
    emulator: RunningEmulator,
) -> None:
    settings = _learning(emulator, straggler_after=0.5)
    # Only the submission's answer is lost; the queue listings beside it teach the timeout.
    emulator.emulator.faults.configure(FaultConfig(lost=1.0, routes=("POST /pic_jobs",), seed=1))
    async with CIClient(settings) as client:
        queue = (await client.list_queues())[0]
        request = JobRequest("img/a.jpg", BUCKET, "ap-guangzhou", "o/a.jpg", queue.queue_id)
        lost = asyncio.create_task(client.submit(request))
        for _ in range(16):
            await client.list_queues()
        # Sent with the 30 s ceiling; the guard is far above the learnt 0.3 s and far below 30 s.
        with pytest.raises(ReadTimeout):
            await asyncio.wait_for(lost, timeout=15)
    assert emulator.backend.stats.snapshot()["faults"]["lost"] == 1


async def test_listing_pages_whose_answers_are_lost_are_asked_for_again_without_waiting_out_a_timeout(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    keys = [f"hedge/{i:03d}.png" for i in range(300)]
    seed_as_links(emulator, data, keys)
    items = numbered_items(keys, 3)
    # The read timeout is far longer than the test: only a copy sent meanwhile can answer.
    settings = ClientSettings(
        BUCKET,
        "ap-guangzhou",
        CREDS,
        endpoint=emulator.url,
        read_timeout=600.0,
        total_timeout=600.0,
        straggler_after=0.05,
    )
    with Ledger.open(tmp_path / "ledger.sqlite") as ledger:
        ledger.add_items(items)
        async with CIClient(settings) as client:
            queue_id = (await client.list_queues())[0].queue_id
            template = JobTemplate(queue_id, None, "imageMogr2/rotate/90", False)
            since = datetime.now(UTC)
            claimed = ledger.claim(300)
            job_ids = [(await client.submit(template.request(item))).job_id for item in claimed]
            ledger.mark_unknown(item.item_id for item in claimed)
            emulator.emulator.faults.configure(
                FaultConfig(lost=0.5, routes=("GET /pic_jobs",), seed=3)
            )
            retrier = Retrier(RetryPolicy.for_tests())
            reconciler = Reconciler(client, ledger, queue_id, retrier=retrier)

            unsettled = await reconciler.settle(since, datetime.now(UTC))

        adopted = dict(ledger.connection.execute("SELECT item_id, job_id FROM items").fetchall())
        stats = emulator.backend.stats.snapshot()
        assert unsettled == 0
        assert adopted == {item.item_id: job for item, job in zip(claimed, job_ids, strict=True)}
        assert stats["faults"]["lost"] >= 1
        # Each lost page was answered by its copy: nothing timed out, nothing was retried.
        assert retrier.budget.tokens == retrier.budget.capacity
        assert (
            stats["requests"]["GET /pic_jobs"] == reconciler.list_requests + stats["faults"]["lost"]
        )
