"""Several outputs per object: `[[job]]` tables against the emulator, over real ledgers."""

from __future__ import annotations

import csv
import io
import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from orchestrator.cli import cli
from orchestrator.cli.run import _plan_lines
from orchestrator.cloud.client import CIClient, ClientSettings
from orchestrator.cloud.pacing import AdaptiveRateLimiter
from orchestrator.emulator.server import RunningEmulator
from orchestrator.engine.dryrun import Plan, dry_run
from orchestrator.exceptions import SourceError
from orchestrator.items import Item
from orchestrator.ledger import Ledger
from orchestrator.manifest import load_manifest
from orchestrator.report import failed_manifest, status
from tests.engine.support import BUCKET, CREDS, run_manifest, seed

THUMB = (
    "thumb",
    'process_rule = "imageMogr2/thumbnail/4x/format/webp"\noutput = "thumbs/{dir}/{stem}.webp"\n'
    "job_level = 2",
)
MEDIUM = ("medium", 'process_rule = "imageMogr2/rotate/90"\noutput = "medium/{key}"')
WEBP = ("webp", 'process_rule = "imageMogr2/format/webp"\noutput = "webp/{dir}/{stem}.webp"')
GRAY = ("gray", 'process_rule = "imageMogr2/rotate/180"\noutput = "gray/{key}"')


def write_jobs(
    folder: Path, *jobs: tuple[str, str], source: str = 'prefix = "img/"', name: str = "multi"
) -> Path:
    path = folder / f"{name}.toml"
    head = f"""\
        name = "{name}"
        [target]
        bucket = "{BUCKET}"
        region = "ap-guangzhou"
        [source]
        {source}
        [limits]
        concurrency = 32
        """
    tables = "".join(f'\n[[job]]\nname = "{job}"\n{body}\n' for job, body in jobs)
    path.write_text(textwrap.dedent(head) + tables)
    return path


def created(emulator: RunningEmulator) -> list[tuple[str, str]]:
    """(input key, output key) of every job the emulator created, in creation order."""
    stats = emulator.backend.stats.snapshot()
    return [(s["input_object"], s["output_object"]) for s in stats["submissions"]]


async def planned(manifest: Path, emulator: RunningEmulator) -> Plan:
    settings = ClientSettings(BUCKET, "ap-guangzhou", CREDS, endpoint=emulator.url)
    async with CIClient(settings, limiter=AdaptiveRateLimiter(5000)) as client:
        return await dry_run(load_manifest(manifest), client)


def job_status(manifest: Path) -> dict[str, dict[str, object]]:
    loaded = load_manifest(manifest)
    with Ledger.open(loaded.ledger_path) as ledger:
        jobs: dict[str, dict[str, object]] = status(ledger, loaded.job_names)["jobs"]
        return jobs


@pytest.mark.slow
async def test_three_jobs_over_500_keys_make_1500_jobs_once_each_in_level_order(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    keys = [f"img/{i // 100}/{i:03d}.png" for i in range(500)]
    seed(emulator, data, keys)
    manifest = write_jobs(tmp_path, THUMB, MEDIUM, WEBP)

    report, _ = await run_manifest(manifest, emulator)

    assert (report.exit_code, report.submitted, report.counts["success"]) == (0, 1500, 1500)
    assert report.expansion.matched == 500
    stats = emulator.backend.stats.snapshot()
    assert (stats["jobs_created"], stats["duplicate_submissions"]) == (1500, 0)
    pairs = created(emulator)
    expected = {
        (key, out)
        for key in keys
        for out in (
            key.replace("img/", "thumbs/img/").replace(".png", ".webp"),
            "medium/" + key,
            key.replace("img/", "webp/img/").replace(".png", ".webp"),
        )
    }
    assert set(pairs) == expected
    # The thumbnails have JobLevel 2: every one is sent before any item of the other jobs.
    last_thumb = max(i for i, (_key, out) in enumerate(pairs) if out.startswith("thumbs/"))
    first_other = min(i for i, (_key, out) in enumerate(pairs) if not out.startswith("thumbs/"))
    assert last_thumb < first_other
    assert (data / BUCKET / "thumbs/img/4/499.webp").exists()
    assert (data / BUCKET / "medium/img/4/499.png").exists()
    assert (data / BUCKET / "webp/img/0/000.webp").exists()
    assert {name: job["total"] for name, job in job_status(manifest).items()} == {
        "thumb": 500,
        "medium": 500,
        "webp": 500,
    }

    again, _ = await run_manifest(manifest, emulator)

    assert (again.exit_code, again.submitted, again.expansion.added) == (0, 0, 0)
    assert emulator.backend.stats.snapshot()["jobs_created"] == 1500


async def test_adding_removing_and_changing_jobs_submits_only_what_changed(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    keys = [f"img/{i:02d}.png" for i in range(40)]
    seed(emulator, data, keys)
    first, _ = await run_manifest(write_jobs(tmp_path, THUMB, MEDIUM, WEBP), emulator)
    assert (first.exit_code, first.submitted) == (0, 120)

    added, _ = await run_manifest(write_jobs(tmp_path, THUMB, MEDIUM, WEBP, GRAY), emulator)
    assert (added.exit_code, added.submitted, added.expansion.added) == (0, 40, 40)
    assert {out for _key, out in created(emulator)[120:]} == {f"gray/{key}" for key in keys}

    manifest = write_jobs(tmp_path, THUMB, WEBP, GRAY)
    removed, _ = await run_manifest(manifest, emulator)
    assert (removed.exit_code, removed.submitted, removed.expansion.added) == (0, 0, 0)
    assert removed.counts["success"] == 120  # the manifest's jobs only
    jobs = job_status(manifest)
    assert jobs["medium"] == {
        "in_manifest": False,
        "total": 40,
        "counts": {**dict.fromkeys(jobs["medium"]["counts"], 0), "success": 40},  # type: ignore[arg-type]
    }
    shown = CliRunner().invoke(cli, ["status", str(manifest)])
    assert shown.exit_code == 0
    assert "  job medium (40 items, no longer in the manifest): success 40" in shown.output
    assert "  job gray (40 items): success 40" in shown.output

    changed = (WEBP[0], WEBP[1].replace("format/webp", "format/webp/quality/60"))
    manifest = write_jobs(tmp_path, THUMB, changed, GRAY)
    lines = _plan_lines("multi", await planned(manifest, emulator))
    assert (
        "  webp: the operation changed since its last run; 40 objects will be processed again"
    ) in lines
    rerun, _ = await run_manifest(manifest, emulator)
    assert (rerun.exit_code, rerun.submitted) == (0, 40)
    # The same outputs again: the emulator counts a second job for each (input, output).
    again = [
        s["output_object"]
        for s in emulator.backend.stats.snapshot()["submissions"]
        if s["count"] == 2
    ]
    assert sorted(again) == sorted(
        key.replace("img/", "webp/img/").replace(".png", ".webp") for key in keys
    )
    assert emulator.backend.stats.snapshot()["jobs_created"] == 200


def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (10, 90, 160)).save(buf, "PNG")
    return buf.getvalue()


async def test_a_failed_only_report_reruns_only_the_failed_object_and_job_pairs(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    # `cut` at x=10 needs a wide image, at y=10 a tall one: which pairs fail depends on both.
    sizes = {"img/small.png": (8, 6), "img/wide.png": (20, 6), "img/tall.png": (6, 20)}
    sizes |= {f"img/big{i}.png": (20, 20) for i in range(3)}
    for key, size in sizes.items():
        (data / BUCKET / key).parent.mkdir(parents=True, exist_ok=True)
        (data / BUCKET / key).write_bytes(_png(*size))
    emulator.emulator.reset()
    rotate = ("rotate", 'process_rule = "imageMogr2/rotate/90"\noutput = "r/{key}"')
    right = ("right", 'process_rule = "imageMogr2/cut/4x4x10x0"\noutput = "x/{key}"')
    down = ("down", 'process_rule = "imageMogr2/cut/4x4x0x10"\noutput = "y/{key}"')
    manifest = write_jobs(tmp_path, rotate, right, down)

    report, _ = await run_manifest(manifest, emulator)

    assert (report.exit_code, report.counts["success"], report.counts["failed"]) == (1, 14, 4)
    with Ledger.open(load_manifest(manifest).ledger_path) as ledger:
        rows = list(failed_manifest(ledger.iter_items(["failed"]), with_output=False))
    assert rows[0] == ["bucket", "key", "job_level", "job"]
    assert sorted((row[1], row[3]) for row in rows[1:]) == [
        ("img/small.png", "down"),
        ("img/small.png", "right"),
        ("img/tall.png", "right"),
        ("img/wide.png", "down"),
    ]
    with (tmp_path / "failed.csv").open("w", newline="") as out:
        csv.writer(out).writerows(rows)
    failed = CliRunner().invoke(cli, ["report", "--failed-only", str(manifest)])
    assert failed.output.splitlines() == [",".join(row) for row in rows]
    lines = CliRunner().invoke(cli, ["report", "--format", "jsonl", str(manifest)]).output
    reported = [json.loads(line) for line in lines.splitlines()]
    assert sorted((r["job"], r["state"]) for r in reported if r["key"] == "img/wide.png") == [
        ("down", "failed"),
        ("right", "success"),
        ("rotate", "success"),
    ]
    shown = json.loads(CliRunner().invoke(cli, ["status", "--json", str(manifest)]).output)
    assert {job: info["counts"]["failed"] for job, info in shown["jobs"].items()} == {
        "rotate": 0,
        "right": 2,
        "down": 2,
    }
    # The same jobs, their cuts now inside every image, over the failed rows only.
    fixed = [
        (name, body.replace("x10x0", "x0x0").replace("x0x10", "x0x0"))
        for name, body in (rotate, right, down)
    ]
    retry = write_jobs(tmp_path, *fixed, source='csv = "failed.csv"', name="retry")

    again, _ = await run_manifest(retry, emulator)

    assert (again.exit_code, again.submitted) == (0, 4)
    stats = emulator.backend.stats.snapshot()
    twice = [
        (s["input_object"], s["output_object"]) for s in stats["submissions"] if s["count"] == 2
    ]
    assert stats["jobs_created"] == 22
    assert sorted(twice) == [
        ("img/small.png", "x/img/small.png"),
        ("img/small.png", "y/img/small.png"),
        ("img/tall.png", "x/img/tall.png"),
        ("img/wide.png", "y/img/wide.png"),
    ]
    with Ledger.open(load_manifest(retry).ledger_path) as ledger:
        assert set(ledger.job_counts()) == {"right", "down"}


async def test_pending_items_of_a_job_no_longer_in_the_manifest_are_never_sent(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    seed(emulator, data, ["img/a.png", "img/b.png"])
    manifest = write_jobs(tmp_path, THUMB, MEDIUM)
    path = load_manifest(manifest).ledger_path
    path.parent.mkdir(parents=True)
    with Ledger.open(path) as ledger:
        ledger.add_items(
            [
                Item(
                    f"old{n}",
                    BUCKET,
                    f"img/{n}.png",
                    BUCKET,
                    "ap-guangzhou",
                    f"old/{n}",
                    2,
                    job="old",
                )
                for n in "ab"
            ]
        )

    report, _ = await run_manifest(manifest, emulator)

    assert (report.exit_code, report.submitted, report.counts["pending"]) == (0, 4, 0)
    assert {out.split("/")[0] for _key, out in created(emulator)} == {"thumbs", "medium"}
    jobs = job_status(manifest)
    assert jobs["old"]["in_manifest"] is False
    assert jobs["old"]["counts"]["pending"] == 2  # type: ignore[index]


async def test_a_csv_row_naming_a_job_the_manifest_lacks_is_an_error_naming_file_and_line(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    (tmp_path / "keys.csv").write_text("key,job\nimg/a.png,thumb\nimg/b.png,webp\n")
    manifest = write_jobs(tmp_path, THUMB, MEDIUM, source='csv = "keys.csv"')
    with pytest.raises(SourceError) as caught:
        await run_manifest(manifest, emulator)
    assert str(caught.value) == (
        f"{tmp_path / 'keys.csv'}:3: job 'webp' is not a job of this manifest (medium, thumb)"
    )


async def test_a_csv_output_column_needs_a_single_job(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    (tmp_path / "keys.csv").write_text("key,output\nimg/a.png,x/a.png\n")
    manifest = write_jobs(tmp_path, THUMB, MEDIUM, source='csv = "keys.csv"')
    with pytest.raises(SourceError) as caught:
        await run_manifest(manifest, emulator)
    assert str(caught.value) == (
        f"{tmp_path / 'keys.csv'}:2: output: a row's own output is valid only with a single"
        " [job]; this manifest has 2 jobs"
    )
