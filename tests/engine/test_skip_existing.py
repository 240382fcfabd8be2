"""skip_existing against the emulator: outputs found by listing, skipped items, --force."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

from orchestrator.cloud.client import CIClient, ClientSettings
from orchestrator.emulator.server import RunningEmulator
from orchestrator.engine.dryrun import Plan, dry_run
from orchestrator.ledger import Ledger
from orchestrator.manifest import load_manifest
from tests.engine.support import BUCKET, CREDS, OPTIONS, TINY, run_manifest, seed, write_manifest

RULE = 'process_rule = "imageMogr2/rotate/90"\n'
FORCED = dataclasses.replace(OPTIONS, force=True)


def _job(mode: str, output: str = "out/{key}", extra: str = "") -> str:
    return f'{RULE}output = "{output}"\nskip_existing = {mode}\n{extra}'


def _csv(folder: Path, keys: list[str]) -> str:
    (folder / "keys.csv").write_text("key\n" + "\n".join(keys) + "\n")
    return 'csv = "keys.csv"'


async def _dry_run(manifest: Path, emu: RunningEmulator, *, force: bool = False) -> Plan:
    settings = ClientSettings(BUCKET, "ap-guangzhou", CREDS, endpoint=emu.url)
    async with CIClient(settings) as client:
        return await dry_run(load_manifest(manifest), client, force=force)


def _rows(manifest: Path) -> dict[str, tuple[str, str | None, dict[str, object] | None]]:
    with Ledger.open(load_manifest(manifest).ledger_path) as ledger:
        return {row.key: (str(row.state), row.code, row.result) for row in ledger.iter_items()}


def _submitted(emu: RunningEmulator) -> list[str]:
    return [s["input_object"] for s in emu.backend.stats.snapshot()["submissions"]]


def _listings(emu: RunningEmulator) -> int:
    return int(emu.backend.stats.snapshot()["requests"].get("GET /", 0))


async def test_600_of_1000_outputs_existing_make_400_jobs_and_600_skipped_until_forced(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    keys = [f"in/{i:04d}.png" for i in range(1000)]
    done = keys[::5] + keys[1::5] + keys[2::5]  # 600 processed before, by another tool
    orphans = [f"out/gone/{i:04d}.png" for i in range(2000)]  # outputs of deleted inputs
    seed(emulator, data, keys + [f"out/{key}" for key in done] + orphans)
    manifest = write_manifest(tmp_path, _csv(tmp_path, keys), job=_job('"exists"'))
    output_pages = -(-(len(done) + len(orphans)) // 1000)

    first, _ = await run_manifest(manifest, emulator)

    assert (first.exit_code, first.submitted) == (0, 400)
    assert (first.counts["success"], first.counts["skipped"]) == (400, 600)
    assert sorted(_submitted(emulator)) == sorted(set(keys) - set(done))
    assert _listings(emulator) <= output_pages + 2  # a CSV source: every listing is of outputs
    (skip,) = first.skips
    assert (skip.listed, skip.pages, skip.skipped) == (2600, output_pages, 600)
    state, code, result = _rows(manifest)[done[0]]
    assert (state, code) == ("skipped", "OutputExists")
    assert result is not None and set(result) == {"etag", "last_modified"}
    assert result["etag"] == hashlib.md5(TINY, usedforsecurity=False).hexdigest()

    emulator.emulator.reset()  # clears the emulator's counters
    second, _ = await run_manifest(manifest, emulator)
    assert (second.exit_code, second.submitted, _listings(emulator)) == (0, 0, 0)

    plan = await _dry_run(manifest, emulator, force=True)
    assert (plan.already_final, plan.forced, plan.to_submit) == (1000, 600, 600)
    assert (plan.skips[0].existing, plan.skips[0].force) == (600, True)

    emulator.emulator.reset()
    forced, _ = await run_manifest(manifest, emulator, FORCED)
    assert (forced.exit_code, forced.submitted, forced.counts["success"]) == (0, 600, 1000)
    assert sorted(_submitted(emulator)) == sorted(done)
    assert forced.counts["skipped"] == 0

    emulator.emulator.reset()
    after, _ = await run_manifest(manifest, emulator)  # the force was for that run only
    assert (after.exit_code, after.submitted, after.counts["success"]) == (0, 0, 1000)


async def test_newer_processes_the_objects_whose_output_is_older_than_the_input(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    keys = [f"in/{i:03d}.png" for i in range(100)]
    done = keys[:60]
    stale = done[::12]  # 5 outputs written before their input last changed
    seed(emulator, data, keys + [f"out/{key}" for key in done])
    for key in stale:
        path = data / BUCKET / "out" / key
        earlier = path.stat().st_mtime - 3600
        os.utime(path, (earlier, earlier))
    emulator.emulator.reset()
    manifest = write_manifest(tmp_path, 'prefix = "in/"', job=_job('"newer"'))

    plan = await _dry_run(manifest, emulator)
    emulator.emulator.reset()
    report, _ = await run_manifest(manifest, emulator)

    assert (plan.skips[0].existing, plan.skips[0].unknown_time, plan.to_submit) == (55, 0, 45)
    assert (report.exit_code, report.submitted, report.counts["skipped"]) == (0, 45, 55)
    assert sorted(_submitted(emulator)) == sorted(set(keys) - set(done) | set(stale))
    # one page of inputs, one of outputs
    assert _listings(emulator) == 2


async def test_newer_without_the_inputs_time_behaves_as_exists_and_the_dry_run_says_so(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    keys = [f"in/{i}.png" for i in range(10)]
    seed(emulator, data, keys + [f"out/{key}" for key in keys[:7]])
    manifest = write_manifest(tmp_path, _csv(tmp_path, keys), job=_job('"newer"'))

    plan = await _dry_run(manifest, emulator)
    report, _ = await run_manifest(manifest, emulator)

    assert (plan.skips[0].existing, plan.skips[0].unknown_time, plan.to_submit) == (7, 7, 3)
    assert (report.submitted, report.counts["skipped"], report.skips[0].unknown_time) == (3, 7, 7)


async def test_force_on_a_new_ledger_processes_every_object_and_lists_nothing(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    keys = [f"in/{i}.png" for i in range(20)]
    seed(emulator, data, keys + [f"out/{key}" for key in keys])
    manifest = write_manifest(tmp_path, _csv(tmp_path, keys), job=_job('"exists"'))

    plan = await _dry_run(manifest, emulator)
    forced_plan = await _dry_run(manifest, emulator, force=True)
    emulator.emulator.reset()
    report, _ = await run_manifest(manifest, emulator, FORCED)

    assert (plan.to_submit, plan.skips[0].existing) == (0, 20)
    assert (forced_plan.to_submit, forced_plan.skips[0].existing) == (20, 20)
    assert (report.exit_code, report.submitted, report.counts["success"]) == (0, 20, 20)
    assert _listings(emulator) == 0


async def test_a_template_without_a_literal_prefix_lists_the_whole_output_bucket(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    thumbs = "thumbs-1250000000"
    for key in ["a.png", "b.png", "unrelated/x.png"]:
        (data / thumbs / key).parent.mkdir(parents=True, exist_ok=True)
        (data / thumbs / key).write_bytes(TINY)
    seed(emulator, data, ["a.png", "b.png", "c.png"])
    extra = f'output_bucket = "{thumbs}"\n'
    manifest = write_manifest(
        tmp_path, _csv(tmp_path, ["a.png", "b.png", "c.png"]), job=_job('"exists"', "{key}", extra)
    )

    plan = await _dry_run(manifest, emulator)
    report, _ = await run_manifest(manifest, emulator)

    assert (plan.skips[0].prefix, plan.skips[0].listed, plan.to_submit) == ("", 3, 1)
    assert (report.submitted, report.counts["skipped"]) == (1, 2)
    assert _submitted(emulator) == ["c.png"]


async def test_an_input_that_changed_since_it_was_skipped_is_processed_with_reprocess_changed(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    keys = ["in/a.png", "in/b.png"]
    seed(emulator, data, keys + [f"out/{key}" for key in keys])
    job = _job('"exists"', extra="reprocess_changed = true")
    manifest = write_manifest(tmp_path, 'prefix = "in/"', job=job)
    first, _ = await run_manifest(manifest, emulator)
    (data / BUCKET / "in/b.png").write_bytes(TINY + b"\0")  # another ETag; its output stays
    emulator.emulator.reset()

    again, _ = await run_manifest(manifest, emulator)

    assert (first.submitted, first.counts["skipped"]) == (0, 2)
    assert (again.exit_code, again.submitted, again.counts["skipped"]) == (0, 1, 1)
    assert _submitted(emulator) == ["in/b.png"]
    assert _rows(manifest)["in/b.png"][0] == "success"
