"""The `picjobs` command: exact exit codes and output, on the demo manifest and bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from orchestrator.cli import cli

DEMO = Path(__file__).parents[2] / "manifests" / "demo.toml"


def _demo(tmp_path: Path) -> Path:
    target = tmp_path / "demo.toml"
    shutil.copy(DEMO, target)
    return target


def test_the_demo_runs_to_exit_0_writes_images_and_a_second_run_submits_nothing(
    tmp_path: Path,
) -> None:
    manifest = _demo(tmp_path)
    first = CliRunner().invoke(cli, ["run", "--quiet", str(manifest)])
    assert first.exit_code == 0, first.output
    assert "demo: success 16 (16 submitted this run" in first.output
    outputs = tmp_path / ".picjobs" / "demo-data" / "demo-1250000000"
    for job in ("thumbs", "medium"):  # two outputs per photo
        images = sorted((outputs / job).rglob("*.webp"))
        assert len(images) == 8
        assert all(p.read_bytes()[8:12] == b"WEBP" for p in images)
    second = CliRunner().invoke(cli, ["run", "--quiet", str(manifest)])
    assert second.exit_code == 0
    assert "demo: success 16 (0 submitted this run" in second.output


def test_a_dry_run_prints_the_plan_by_level_and_creates_no_ledger(tmp_path: Path) -> None:
    manifest = _demo(tmp_path)
    result = CliRunner().invoke(cli, ["run", "--dry-run", "--quiet", str(manifest)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "demo: 9 objects, 8 match the filters",
        "  JobLevel 2: 2",
        "  JobLevel 0: 14",
        "  job thumb: 8 items",
        "  job medium: 8 items",
        "  already final in the ledger: 0",
        "  to submit: 16, about 0s at 100 requests/s",
    ]
    assert not (tmp_path / ".picjobs" / "demo.sqlite").exists()


def test_an_unknown_key_exits_2_with_one_line_naming_the_file_line_and_closest_key(
    tmp_path: Path,
) -> None:
    manifest = _demo(tmp_path)
    manifest.write_text(manifest.read_text().replace("concurrency = 8", "concurency = 8"))
    result = CliRunner().invoke(cli, ["run", str(manifest)])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1
    assert "demo.toml:" in result.output
    assert "unknown key 'concurency' (did you mean 'concurrency'?)" in result.output
    assert "Traceback" not in result.output


def test_status_without_a_ledger_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["status", str(_demo(tmp_path))])
    assert result.exit_code == 2
    assert "no ledger yet" in result.output


def test_after_a_lost_ledger_skip_existing_submits_nothing_and_force_shows_what_it_would_redo(
    tmp_path: Path,
) -> None:
    manifest = _demo(tmp_path)
    assert CliRunner().invoke(cli, ["run", "--quiet", str(manifest)]).exit_code == 0
    (tmp_path / ".picjobs" / "demo.sqlite").unlink()  # a new machine: the outputs stay
    text = manifest.read_text().replace("is_pic_info = true", 'skip_existing = "exists"')
    text = text.replace(
        'output = "medium/{dir}/{stem}.webp"',
        'output = "medium/{dir}/{stem}.webp"\nskip_existing = "exists"',
    )
    manifest.write_text(text)

    plan = CliRunner().invoke(cli, ["run", "--dry-run", "--quiet", str(manifest)])
    forced = CliRunner().invoke(cli, ["run", "--dry-run", "--force", "--quiet", str(manifest)])
    metrics = tmp_path / "picjobs.prom"
    run = CliRunner().invoke(cli, ["run", "--quiet", "--metrics-file", str(metrics), str(manifest)])
    status = CliRunner().invoke(cli, ["status", str(manifest)])
    report = CliRunner().invoke(cli, ["report", "--format", "jsonl", str(manifest)])

    assert plan.exit_code == 0, plan.output
    assert plan.output.splitlines()[3:] == [
        "  job thumb: 8 items",
        "  job medium: 8 items",
        "  already final in the ledger: 0",
        "  skip_existing = \"exists\": 8 objects under 'thumbs/'",
        "  output exists, to be skipped: 8",
        "  skip_existing = \"exists\": 8 objects under 'medium/'",
        "  output exists, to be skipped: 8",
        "  to submit: 0, about 0s at 100 requests/s",
    ]
    assert forced.output.splitlines()[6:] == [
        "  skip_existing = \"exists\": 8 objects under 'thumbs/'",
        "  output exists, processed anyway (--force): 8",
        "  skip_existing = \"exists\": 8 objects under 'medium/'",
        "  output exists, processed anyway (--force): 8",
        "  to submit: 16, about 0s at 100 requests/s",
    ]
    assert run.exit_code == 0, run.output
    assert run.output.startswith("demo: skipped 16 (0 submitted this run, ")
    assert "16 skipped this run: their output exists (skip_existing)" in run.output
    assert "  skipped           16" in status.output
    assert "  job medium (8 items): skipped 8" in status.output
    assert 'picjobs_items{manifest="demo",state="skipped"} 16' in metrics.read_text()
    assert report.output.count('"state": "skipped", "code": "OutputExists"') == 16
