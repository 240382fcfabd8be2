"""`status --shards N` and `report --shards N` read the shard ledgers of `run --shard K/N` as
one, and name a shard ledger that is missing or being written by a run."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.ledger import Ledger

from .report.page_parts import Page

DEMO = Path(__file__).parent.parent / "manifests" / "demo.toml"


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """The demo manifest with its shard 0 of 2 run to the end and shard 1 never started."""
    manifest = Path(shutil.copy(DEMO, tmp_path / "demo.toml"))
    result = CliRunner().invoke(cli, ["run", "--quiet", "--shard", "0/2", str(manifest)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("demo shard 0/2: success ")
    return manifest


def _ledger(manifest: Path, k: int) -> Path:
    return manifest.parent / ".picjobs" / f"demo.shard-{k}-of-2.sqlite"


def test_status_json_has_per_shard_and_total_counts_and_names_the_missing_shard(
    demo: Path,
) -> None:
    result = CliRunner().invoke(cli, ["status", str(demo), "--shards", "2", "--json"])
    assert result.exit_code == 0
    info = json.loads(result.stdout)
    first, second = info["per_shard"]
    assert first["condition"] == "idle"
    assert first["counts"]["success"] == first["total"] == info["total"] > 0
    assert info["counts"]["success"] == info["total"]
    assert second == {
        "shard": 1,
        "ledger": str(_ledger(demo, 1)),
        "condition": "missing",
        "total": 0,
        "counts": {},
    }
    assert info["missing"] == [str(_ledger(demo, 1))]
    assert info["problems"] == [f"shard 1 of 2: {_ledger(demo, 1)}: no ledger (the shard has not"
                                " run yet, or its ledger is elsewhere)"]  # fmt: skip


def test_status_text_names_a_shard_ledger_that_a_run_is_writing(demo: Path) -> None:
    with Ledger.open(_ledger(demo, 0)) as db:
        db.lock()
        db.start_run(os.getpid(), socket.gethostname(), {})
        result = CliRunner().invoke(cli, ["status", str(demo), "--shards", "2"])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("demo: ") and lines[0].endswith(" items in 1 of 2 shard ledgers")
    assert any(
        line.startswith(f"  shard 0 of 2: {_ledger(demo, 0)}: being written by a run (pid")
        for line in lines
    )
    assert any(line.startswith(f"  shard 1 of 2: {_ledger(demo, 1)}: no ledger") for line in lines)


def test_report_reads_every_shard_names_the_missing_one_and_exits_incomplete(demo: Path) -> None:
    result = CliRunner().invoke(cli, ["report", str(demo), "--shards", "2"])
    assert result.exit_code == 75
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    with Ledger.open(_ledger(demo, 0)) as db:
        assert len(rows) == db.total() > 0
    assert {row["state"] for row in rows} == {"success"}
    assert result.stderr.splitlines() == [
        f"picjobs: warning: shard 1 of 2: {_ledger(demo, 1)}: no ledger (the shard has not run"
        " yet, or its ledger is elsewhere)"
    ]


def test_report_of_a_shard_being_written_by_a_run_warns_and_exits_zero(demo: Path) -> None:
    last = CliRunner().invoke(cli, ["run", "--quiet", "--shard", "1/2", str(demo)])
    assert last.exit_code == 0, last.output
    with Ledger.open(_ledger(demo, 0)) as db:
        db.lock()
        db.start_run(os.getpid(), socket.gethostname(), {})
        result = CliRunner().invoke(cli, ["report", str(demo), "--shards", "2"])
    assert result.exit_code == 0
    assert result.stderr.startswith(
        f"picjobs: warning: shard 0 of 2: {_ledger(demo, 0)}: being written by a run (pid"
    )


def test_report_of_all_shards_covers_every_object_once_after_the_last_shard_runs(
    demo: Path,
) -> None:
    last = CliRunner().invoke(cli, ["run", "--quiet", "--shard", "1/2", str(demo)])
    assert last.exit_code == 0, last.output
    result = CliRunner().invoke(cli, ["report", str(demo), "--shards", "2", "--format", "jsonl"])
    assert result.exit_code == 0 and result.stderr == ""
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    pairs = [(row["key"], row["job"]) for row in rows]  # the demo has two jobs
    assert len(pairs) == len(set(pairs)) == 16
    assert len({key for key, _job in pairs}) == 8
    failed = CliRunner().invoke(cli, ["report", str(demo), "--shards", "2", "--failed-only"])
    assert failed.exit_code == 0
    assert failed.stdout == "bucket,key,job_level,job\n"


def test_html_report_of_all_shards_is_one_page_that_names_a_missing_shard(
    demo: Path, tmp_path: Path
) -> None:
    page = tmp_path / "night.html"
    args = ["report", str(demo), "--shards", "2", "--format", "html", "-o", str(page)]
    partial = CliRunner().invoke(cli, args)
    assert partial.exit_code == 75
    first = Page(page.read_text())
    assert first.by_id["shard-problems"].startswith(f"shard 1 of 2: {_ledger(demo, 1)}: no ledger")
    with Ledger.open(_ledger(demo, 0)) as db:
        assert first.by_id["count-total"] == str(db.total())

    last = CliRunner().invoke(cli, ["run", "--quiet", "--shard", "1/2", str(demo)])
    assert last.exit_code == 0, last.output
    complete = CliRunner().invoke(cli, args)
    assert complete.exit_code == 0 and complete.stderr == ""
    whole = Page(page.read_text())
    assert "shard-problems" not in whole.by_id
    assert whole.by_id["count-total"] == whole.by_id["count-success"] == "16"
    assert whole.by_id["exit-code"] == "0"
