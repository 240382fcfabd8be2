"""`picjobs run` as cron runs it: lock, logs, metrics, status, and the failed-only round trip."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.emulator.faults import FaultConfig
from orchestrator.emulator.server import EmulatorThread
from orchestrator.items import Item
from orchestrator.ledger import Ledger, LockInfo
from tests.support import BUCKET, emulator_thread, env, put_images, write_manifest


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[EmulatorThread]:
    data = tmp_path / "data"
    put_images(data, [f"img/{i}.png" for i in range(6)])
    with emulator_thread(data) as running:
        yield running


@pytest.fixture
def manifest(tmp_path: Path, emu: EmulatorThread) -> Path:
    return write_manifest(tmp_path, emu.url, 'prefix = "img/"')


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env())
    return result.exit_code, result.stdout, result.stderr


def _ledger(manifest: Path) -> Path:
    return manifest.parent / ".picjobs" / "nightly.sqlite"


def test_a_second_run_on_a_locked_ledger_exits_3_naming_the_holder(manifest: Path) -> None:
    path = _ledger(manifest)
    path.parent.mkdir()
    with Ledger.open(path) as holder:
        holder.lock()
        code, _, err = _invoke("run", str(manifest))
    assert code == 3
    assert err.count("\n") == 1
    assert (
        f"another run holds the ledger lock (pid {os.getpid()} on {socket.gethostname()}, started 20"
        in err
    )


def test_a_lock_left_by_a_killed_run_is_taken_over_with_a_warning(manifest: Path) -> None:
    path = _ledger(manifest)
    path.parent.mkdir()
    Ledger.open(path).close()
    dead = LockInfo(2**22 + 12345, socket.gethostname(), "2026-01-01T00:00:00Z")
    Path(f"{path}.lock").write_bytes(dead.encode())

    code, out, err = _invoke("run", str(manifest))

    assert code == 0, err
    assert f"taking over the lock of a run that ended without releasing it ({dead})" in err
    assert "success 6" in out
    assert Path(f"{path}.lock").read_bytes() == b""  # released on a clean exit


def test_quiet_prints_only_the_summary(manifest: Path) -> None:
    code, out, err = _invoke("run", "--quiet", str(manifest))
    assert code == 0
    assert err == ""
    assert out.splitlines()[0].startswith("nightly: success 6 (6 submitted this run")


def test_json_logs_are_one_object_per_line_with_level_and_message(manifest: Path) -> None:
    code, out, err = _invoke("run", "--log-format", "json", str(manifest))
    assert code == 0
    records = [json.loads(line) for line in err.splitlines()]
    assert records
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert any(r["message"].startswith("expanded: 6 objects listed") for r in records)
    assert "success 6" in out


def test_the_metrics_file_has_counts_per_state_duration_exit_code_and_last_success(
    manifest: Path, tmp_path: Path
) -> None:
    metrics = tmp_path / "picjobs.prom"
    code, _, _ = _invoke("run", "--quiet", "--metrics-file", str(metrics), str(manifest))
    assert code == 0
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in metrics.read_text().splitlines()
        if not line.startswith("#")
    }
    assert samples['picjobs_items{manifest="nightly",state="success"}'] == 6
    assert samples['picjobs_items{manifest="nightly",state="pending"}'] == 0
    assert samples['picjobs_run_exit_code{manifest="nightly"}'] == 0
    assert samples['picjobs_run_duration_seconds{manifest="nightly"}'] > 0
    finished = samples['picjobs_run_finished_timestamp_seconds{manifest="nightly"}']
    assert samples['picjobs_last_success_timestamp_seconds{manifest="nightly"}'] <= finished + 1
    assert "# TYPE picjobs_items gauge" in metrics.read_text()


def test_status_json_gives_counts_rate_eta_and_the_last_success(manifest: Path) -> None:
    _invoke("run", "--quiet", str(manifest))
    code, out, _ = _invoke("status", "--json", str(manifest))
    info = json.loads(out)
    assert code == 0
    assert info["counts"]["success"] == 6
    assert info["total"] == 6
    assert (info["running"], info["rate"], info["eta_seconds"]) == (False, 0.0, None)
    assert info["last_success_at"].endswith("Z")
    assert info["last_run"]["exit_code"] == 0


def test_a_failed_only_report_is_a_csv_manifest_that_retries_just_the_failures(
    tmp_path: Path, emu: EmulatorThread, manifest: Path
) -> None:
    data = tmp_path / "data"
    put_images(data, ["img/broken-1.png", "img/broken-2.png"], body=b"not an image")
    emu.running.emulator.reset()
    code, _, _ = _invoke("run", "--quiet", str(manifest))
    assert code == 1
    failed_csv = tmp_path / "failed.csv"
    assert _invoke("report", "--failed-only", "-o", str(failed_csv), str(manifest))[0] == 0
    with failed_csv.open() as rows:
        assert sorted(r["key"] for r in csv.DictReader(rows)) == [
            "img/broken-1.png",
            "img/broken-2.png",
        ]
    put_images(data, ["img/broken-1.png", "img/broken-2.png"])  # fixed at the source
    emu.running.emulator.reset()
    retry = write_manifest(tmp_path, emu.url, 'csv = "failed.csv"', name="nightly-retry")

    code, out, _ = _invoke("run", "--quiet", str(retry))

    assert code == 0
    assert "success 2 (2 submitted this run" in out
    assert (data / BUCKET / "out/img/broken-1.png").read_bytes()[:4] == b"\x89PNG"
    assert oct(failed_csv.stat().st_mode & 0o777) == "0o600"


def test_a_report_has_the_documented_columns_in_order(manifest: Path) -> None:
    _invoke("run", "--quiet", str(manifest))
    code, out, _ = _invoke("report", str(manifest))
    header, *rows = list(csv.reader(out.splitlines()))
    assert code == 0
    assert header == [
        "bucket", "key", "output_bucket", "output_key", "job_id", "job_level", "state", "code",
        "message", "attempts", "submitted_at", "finished_at", "job",
    ]  # fmt: skip
    assert len(rows) == 6
    assert {r[6] for r in rows} == {"success"}


def test_a_deadline_that_is_not_a_duration_is_a_usage_error(manifest: Path) -> None:
    code, _, err = _invoke("run", "--deadline", "soon", str(manifest))
    assert code == 2
    assert "'soon' is not a duration like 90s, 30m, 6h or 1h30m" in err


def test_a_report_piped_into_head_ends_quietly(manifest: Path) -> None:
    path = _ledger(manifest)
    path.parent.mkdir()
    with Ledger.open(path) as db:
        db.add_items(
            Item(f"id{i}", BUCKET, f"k/{i}.png", BUCKET, "ap-guangzhou", f"o/{i}.png", 0)
            for i in range(20000)
        )
    writer = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "report", "--format", "jsonl", str(manifest)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(),
    )  # fmt: skip
    assert writer.stdout is not None
    first = writer.stdout.read(10)
    writer.stdout.close()  # what `head` does once it has enough
    _, err = writer.communicate(timeout=30)
    assert first == b'{"bucket":'
    assert writer.returncode == 0
    assert err == b""


def test_ci_unavailable_at_startup_exits_75_so_cron_runs_it_again(
    tmp_path: Path, emu: EmulatorThread
) -> None:
    emu.running.emulator.faults.configure(FaultConfig(error_503=1.0))
    manifest = write_manifest(tmp_path, emu.url, 'prefix = "img/"', "[limits]\nmax_attempts = 1\n")
    code, _, err = _invoke("run", "--quiet", str(manifest))
    assert code == 75
    assert err.startswith("picjobs: error: HTTP 503")
    assert err.endswith("; run again to resume\n")
    with Ledger.open(_ledger(manifest)) as db:
        assert db.counts()["pending"] == 6
