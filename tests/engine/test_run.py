"""`picjobs run` end to end: manifest -> ledger -> submitter -> tracker, against the emulator."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from orchestrator.cloud.retry import RetryPolicy
from orchestrator.emulator.app import Limits
from orchestrator.emulator.faults import FaultConfig
from orchestrator.emulator.model import QueueState
from orchestrator.emulator.server import RunningEmulator
from orchestrator.exceptions import OutputCollision, UsageError
from orchestrator.ledger import Ledger
from orchestrator.manifest import load_manifest
from tests.engine.support import BUCKET, OPTIONS, run_manifest, seed, write_manifest


def _ledger_states(manifest_path: Path) -> dict[str, str]:
    with Ledger.open(load_manifest(manifest_path).ledger_path) as ledger:
        return {row.key: str(row.state) for row in ledger.iter_items()}


@pytest.mark.slow
async def test_a_5000_key_csv_manifest_submits_every_input_once_and_high_levels_first(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    keys = [f"img/{i:05d}.png" for i in range(5000)]
    vip = {k for i, k in enumerate(keys) if i % 10 == 3}
    seed(emulator, data, keys)
    rows = ["key,job_level"] + [f"{k},{2 if k in vip else 0}" for k in keys]
    (tmp_path / "keys.csv").write_text("\n".join(rows) + "\n")
    manifest = write_manifest(tmp_path, 'csv = "keys.csv"', extra="[limits]\nconcurrency = 32\n")

    report, _ = await run_manifest(manifest, emulator)

    assert report.exit_code == 0
    assert report.counts["success"] == 5000
    assert set(_ledger_states(manifest).values()) == {"success"}
    stats = emulator.backend.stats.snapshot()
    assert stats["jobs_created"] == 5000
    assert stats["duplicate_submissions"] == 0
    order = [s["input_object"] for s in stats["submissions"]]
    assert sorted(order) == sorted(keys)
    last_vip = max(i for i, k in enumerate(order) if k in vip)
    first_plain = min(i for i, k in enumerate(order) if k not in vip)
    # Items are claimed by level; the 32 requests in flight at once may arrive in any order.
    assert last_vip < first_plain + 32
    assert all(k in vip for k in order[: len(vip) - 32])
    assert (data / BUCKET / "out/img/04999.png").exists()


async def test_running_again_submits_nothing_and_exits_zero(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    seed(emulator, data, ["a/1.png", "a/2.png"])
    manifest = write_manifest(tmp_path, 'prefix = "a/"')
    first, _ = await run_manifest(manifest, emulator)
    second, _ = await run_manifest(manifest, emulator)
    assert (first.exit_code, first.submitted) == (0, 2)
    assert (second.exit_code, second.submitted, second.expansion.added) == (0, 0, 0)
    assert emulator.backend.stats.snapshot()["jobs_created"] == 2


async def test_a_prefix_over_several_listing_pages_is_filtered_by_include_and_exclude(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    keys = [f"p/{i:04d}.png" for i in range(1100)] + [f"p/{i:04d}.txt" for i in range(150)]
    keys += [f"p/skip/{i}.png" for i in range(30)] + ["other/x.png"]
    seed(emulator, data, keys)
    source = 'prefix = "p/"\ninclude = ["*.png"]\nexclude = ["p/skip/*"]'
    manifest = write_manifest(tmp_path, source)

    report, _ = await run_manifest(manifest, emulator)

    assert report.exit_code == 0
    assert report.expansion.seen == 1280
    assert sorted(_ledger_states(manifest)) == sorted(keys[:1100])
    stats = emulator.backend.stats.snapshot()
    assert stats["requests"]["GET /"] == 2
    assert stats["jobs_created"] == 1100


async def test_permanent_errors_are_recorded_with_cis_code_and_message(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    seed(emulator, data, ["ok.png"])
    (tmp_path / "keys.csv").write_text("key\nok.png\nmissing.png\n")
    manifest = write_manifest(
        tmp_path, 'csv = "keys.csv"', job='process_rule = "imageMogr2/blur/3"\noutput = "out/{key}"'
    )
    report, _ = await run_manifest(manifest, emulator)
    assert report.exit_code == 1
    with Ledger.open(load_manifest(manifest).ledger_path) as ledger:
        rows = {row.key: (str(row.state), row.code, row.message) for row in ledger.iter_items()}
    assert rows["missing.png"][:2] == ("failed", "ResourceNotFound")
    assert rows["ok.png"][:2] == ("failed", "InvalidArgument")
    assert "blur" in (rows["ok.png"][2] or "")


async def test_a_submission_refused_by_ci_fails_the_item_without_resending(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    seed(emulator, data, ["a.png"])
    (tmp_path / "keys.csv").write_text("key\na.png\n")
    manifest = write_manifest(
        tmp_path,
        'csv = "keys.csv"',
        job='template_id = "t0000000000000000000000000000dead"\noutput = "out/{key}"',
    )
    report, _ = await run_manifest(manifest, emulator)
    assert report.exit_code == 1
    with Ledger.open(load_manifest(manifest).ledger_path) as ledger:
        (row,) = list(ledger.iter_items())
    assert (str(row.state), row.code, row.attempts) == ("failed", "InvalidArgument", 1)
    assert emulator.backend.stats.snapshot()["requests"]["POST /pic_jobs"] == 1


async def test_a_paused_queue_is_a_usage_error_unless_resume_is_asked(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    seed(emulator, data, ["a.png"])
    manifest = write_manifest(tmp_path, 'prefix = ""')
    backend = emulator.backend
    queue = backend.queue(BUCKET)
    backend.update_queue(BUCKET, queue.queue_id, queue.name, QueueState.PAUSED, queue.notify)
    with pytest.raises(UsageError, match="Paused"):
        await run_manifest(manifest, emulator)
    assert emulator.backend.stats.snapshot()["jobs_created"] == 0
    report, _ = await run_manifest(
        manifest, emulator, dataclasses.replace(OPTIONS, resume_queue=True)
    )
    assert (report.exit_code, report.counts["success"]) == (0, 1)


async def test_an_output_collision_is_reported_before_anything_is_submitted(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    seed(emulator, data, ["a.jpg", "a.png"])
    manifest = write_manifest(
        tmp_path,
        'prefix = ""',
        job='process_rule = "imageMogr2/format/webp"\noutput = "{stem}.webp"',
    )
    with pytest.raises(
        OutputCollision, match=r"'a.jpg' and 'a.png' both map to 'photos-1250000000/a.webp'"
    ):
        await run_manifest(manifest, emulator)
    assert emulator.backend.stats.snapshot()["jobs_created"] == 0


async def test_429s_from_an_enforced_rate_slow_ours_and_every_item_still_succeeds(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    keys = [f"k/{i}.png" for i in range(80)]
    seed(emulator, data, keys)
    manifest = write_manifest(tmp_path, 'prefix = "k/"')
    # Well under what the client sends even on a busy machine, so that most requests are refused.
    emulator.emulator.set_limits(Limits(rate=20, burst=2))
    # Retries without waits until the pace has come down: enough of them for every item.
    options = dataclasses.replace(OPTIONS, policy=RetryPolicy.for_tests(attempts=30))
    report, limiter = await run_manifest(manifest, emulator, options, rate=400)
    assert report.exit_code == 0
    assert report.counts["success"] == 80
    assert limiter.throttle_events >= 1
    assert limiter.rate < 400


async def test_lost_responses_are_reconciled_without_duplicates(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    keys = [f"r/{i}.png" for i in range(200)]
    seed(emulator, data, keys)
    manifest = write_manifest(tmp_path, 'prefix = "r/"')
    emulator.emulator.faults.configure(
        FaultConfig(
            reset_after=0.2, error_500=0.1, error_503=0.1, routes=("POST /pic_jobs",), seed=3
        )
    )
    report, _ = await run_manifest(manifest, emulator)
    stats = emulator.backend.stats.snapshot()
    assert report.exit_code == 0
    assert report.counts["success"] == 200
    assert report.adopted > 0
    assert stats["duplicate_submissions"] == 0
    assert stats["jobs_created"] == 200
