"""Nightly behaviour of the engine: breaker, deadline, incremental runs, changed objects, retries."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orchestrator.emulator.faults import FaultConfig
from orchestrator.emulator.server import EmulatorConfig, RunningEmulator, running_emulator
from orchestrator.ledger import Ledger
from orchestrator.manifest import load_manifest
from tests.engine.support import BUCKET, CREDS, OPTIONS, TINY, run_manifest, seed, write_manifest


def _rows(manifest_path: Path) -> dict[str, tuple[str, int, str | None]]:
    with Ledger.open(load_manifest(manifest_path).ledger_path) as ledger:
        return {row.key: (str(row.state), row.attempts, row.code) for row in ledger.iter_items()}


@pytest.fixture
async def slow_emulator(data: Path) -> AsyncIterator[RunningEmulator]:
    """Jobs run for an hour of emulator time, and the queue holds at most ten of them."""
    config = EmulatorConfig(
        data_dir=data,
        default_bucket=BUCKET,
        credentials=CREDS,
        rate=None,
        progression="delay",
        job_seconds=3600,
        queue_max_size=10,
    )
    async with running_emulator(config) as emu:
        yield emu


async def test_a_wrong_template_id_trips_the_breaker_after_the_configured_streak(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    seed(emulator, data, [f"a/{i}.png" for i in range(60)])
    job = 'template_id = "t_does_not_exist"\noutput = "out/{key}"'
    limits = "[limits]\nconcurrency = 1\nmax_consecutive_same_error = 5\n"
    manifest = write_manifest(tmp_path, 'prefix = "a/"', job=job, extra=limits)

    report, _ = await run_manifest(manifest, emulator)

    assert report.exit_code == 4
    assert report.trip is not None
    assert report.trip.code == "InvalidArgument"
    assert "5 consecutive items failed with InvalidArgument" in report.message
    assert report.counts["failed"] == 5
    assert report.counts["pending"] == 55
    assert emulator.backend.stats.snapshot()["requests"]["POST /pic_jobs"] == 5


async def test_a_failure_share_above_the_limit_trips_the_breaker_with_the_dominant_code(
    tmp_path: Path, data: Path
) -> None:
    # A queue of 3 keeps at most 2 jobs outstanding, so submission cannot run far ahead of
    # the failures the tracker sees.
    config = EmulatorConfig(data_dir=data, default_bucket=BUCKET, credentials=CREDS, rate=None,
                            queue_max_size=3)  # fmt: skip
    async with running_emulator(config) as emulator:
        seed(emulator, data, [f"a/{i:02d}.png" for i in range(0, 40, 2)])
        for i in range(1, 40, 2):
            (data / BUCKET / f"a/{i:02d}.png").write_bytes(b"not an image")
        emulator.emulator.reset()
        limits = "[limits]\nconcurrency = 1\nmin_finished = 10\nmax_failure_percent = 30\n"
        manifest = write_manifest(tmp_path, 'prefix = "a/"', extra=limits)

        report, _ = await run_manifest(manifest, emulator)

    assert report.exit_code == 4
    assert report.trip is not None
    assert "max_failure_percent 30" in report.trip.reason
    codes = {code for state, _, code in _rows(manifest).values() if state == "failed"}
    assert codes == {report.trip.code}
    assert report.counts["pending"] > 0


async def test_throttling_and_server_errors_never_count_towards_the_breaker(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    seed(emulator, data, [f"a/{i}.png" for i in range(40)])
    emulator.emulator.faults.configure(
        FaultConfig(error_429=0.2, error_503=0.2, error_500=0.1, seed=7)
    )
    limits = "[limits]\nmax_consecutive_same_error = 1\nmin_finished = 1\nmax_failure_percent = 0\n"
    manifest = write_manifest(tmp_path, 'prefix = "a/"', extra=limits)

    report, _ = await run_manifest(manifest, emulator)

    assert report.exit_code == 0
    assert report.trip is None
    assert report.counts["success"] == 40


async def test_a_deadline_stops_submitting_tracks_for_the_grace_period_and_exits_75(
    tmp_path: Path, data: Path, slow_emulator: RunningEmulator
) -> None:
    seed(slow_emulator, data, [f"a/{i:02d}.png" for i in range(30)])
    manifest = write_manifest(tmp_path, 'prefix = "a/"')
    # The queue, not the deadline, bounds what is sent: the deadline only has to come after
    # the nine submissions, even on a busy machine.
    options = dataclasses.replace(OPTIONS, deadline=1.5, grace=0.1)

    report, _ = await run_manifest(manifest, slow_emulator, options)

    assert report.exit_code == 75
    assert report.deadline_reached
    # The queue holds 10; 90 % of it may be outstanding, and nothing more is sent after that.
    assert report.counts["submitted"] == 9
    assert report.counts["pending"] == 21
    assert slow_emulator.backend.stats.snapshot()["jobs_created"] == 9


async def test_a_deadline_already_past_submits_nothing_and_a_later_run_finishes(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    seed(emulator, data, ["a/1.png", "a/2.png"])
    manifest = write_manifest(tmp_path, 'prefix = "a/"')

    halted, _ = await run_manifest(
        manifest, emulator, dataclasses.replace(OPTIONS, deadline=0.0, grace=0.0)
    )
    finished, _ = await run_manifest(manifest, emulator)

    assert (halted.exit_code, halted.counts["pending"], halted.submitted) == (75, 2, 0)
    assert (finished.exit_code, finished.counts["success"]) == (0, 2)


async def test_a_nightly_prefix_run_adds_only_the_new_objects(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    seed(emulator, data, ["a/1.png", "a/2.png", "a/3.png"])
    manifest = write_manifest(tmp_path, 'prefix = "a/"')
    first, _ = await run_manifest(manifest, emulator)
    seed(emulator, data, ["a/4.png", "a/5.png"])  # reset() rescans and clears the job history

    second, _ = await run_manifest(manifest, emulator)

    assert (first.expansion.added, second.expansion.added) == (3, 2)
    assert (second.exit_code, second.submitted, second.counts["success"]) == (0, 2, 5)
    created = {s["input_object"] for s in emulator.backend.stats.snapshot()["submissions"]}
    assert created == {"a/4.png", "a/5.png"}


@pytest.mark.parametrize(("reprocess", "expected"), [(True, {"a/2.png"}), (False, set())])
async def test_an_object_whose_etag_changed_is_processed_again_only_with_reprocess_changed(
    tmp_path: Path, data: Path, emulator: RunningEmulator, reprocess: bool, expected: set[str]
) -> None:
    seed(emulator, data, ["a/1.png", "a/2.png"])
    job = f'process_rule = "imageMogr2/rotate/90"\noutput = "out/{{key}}"\nreprocess_changed = {str(reprocess).lower()}'
    manifest = write_manifest(tmp_path, 'prefix = "a/"', job=job)
    await run_manifest(manifest, emulator)
    (data / BUCKET / "a/2.png").write_bytes(TINY + b"\0")  # same image, another ETag
    emulator.emulator.reset()

    again, _ = await run_manifest(manifest, emulator)

    created = {s["input_object"] for s in emulator.backend.stats.snapshot()["submissions"]}
    assert created == expected
    assert again.exit_code == 0
    assert _rows(manifest)["a/2.png"] == ("success", 1 + len(expected), None)


async def test_retry_failed_queues_failed_items_again_and_keeps_their_attempt_history(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    seed(emulator, data, ["a/good.png"])
    (data / BUCKET / "a/bad.png").write_bytes(b"not an image")
    emulator.emulator.reset()
    manifest = write_manifest(tmp_path, 'prefix = "a/"')
    first, _ = await run_manifest(manifest, emulator)
    assert (first.exit_code, first.counts["failed"]) == (1, 1)
    seed(emulator, data, ["a/bad.png"])  # the object is fixed

    plain, _ = await run_manifest(manifest, emulator)
    retried, _ = await run_manifest(
        manifest, emulator, dataclasses.replace(OPTIONS, retry_failed=True)
    )

    assert (plain.exit_code, plain.submitted) == (1, 0)
    assert (retried.exit_code, retried.submitted) == (0, 1)
    assert _rows(manifest)["a/bad.png"] == ("success", 2, None)
    with Ledger.open(load_manifest(manifest).ledger_path) as ledger:
        history = ledger.connection.execute(
            "SELECT outcome FROM attempts_log JOIN items USING (item_id) WHERE key = 'a/bad.png' "
            "ORDER BY attempts_log.rowid"
        ).fetchall()
    assert [h[0] for h in history][-1] == "success"
    assert "failed" in [h[0] for h in history]


async def test_an_unchanged_csv_is_not_expanded_again_and_costs_no_request(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    seed(emulator, data, ["a/1.png", "a/2.png"])
    (tmp_path / "keys.csv").write_text("key\na/1.png\na/2.png\n")
    manifest = write_manifest(tmp_path, 'csv = "keys.csv"')
    await run_manifest(manifest, emulator)
    before = sum(emulator.backend.stats.snapshot()["requests"].values())

    again, _ = await run_manifest(manifest, emulator)
    after = sum(emulator.backend.stats.snapshot()["requests"].values())
    (tmp_path / "keys.csv").write_text("key\na/1.png\na/2.png\na/3.png\n")
    seed(emulator, data, ["a/3.png"])
    grown, _ = await run_manifest(manifest, emulator)

    assert again.expansion.skipped
    assert after == before
    assert (grown.expansion.skipped, grown.expansion.added, grown.exit_code) == (False, 1, 0)


async def test_a_retried_item_whose_answer_is_lost_is_not_matched_to_its_earlier_failed_job(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    seed(emulator, data, ["a/good.png"])
    (data / BUCKET / "a/bad.png").write_bytes(b"not an image")
    emulator.emulator.reset()
    manifest = write_manifest(tmp_path, 'prefix = "a/"')
    first, _ = await run_manifest(manifest, emulator)
    assert first.counts["failed"] == 1
    (data / BUCKET / "a/bad.png").write_bytes(TINY)  # fixed in place; the failed job stays listed
    emulator.backend.advance(60)  # the new job is created a minute after the failed one
    emulator.emulator.faults.configure(FaultConfig(reset_after=1.0, routes=("POST /pic_jobs",)))

    retried, _ = await run_manifest(
        manifest, emulator, dataclasses.replace(OPTIONS, retry_failed=True)
    )

    assert (retried.exit_code, retried.adopted) == (0, 1)
    assert _rows(manifest)["a/bad.png"] == ("success", 2, None)
    assert emulator.backend.stats.snapshot()["jobs_created"] == 3
