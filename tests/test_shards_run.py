"""Shards as Kubernetes runs them: `picjobs run --shard K/4` processes side by side against one
emulator that enforces CI's 100 requests per second, one of them killed and started again."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.emulator.server import EmulatorThread
from orchestrator.shard import shard_of

from .support import BUCKET, emulator_thread, env, put_images, write_manifest

pytestmark = pytest.mark.slow

SHARDS = 4


def _start(manifest: Path, shard: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "run", "--quiet", "--shard", shard, str(manifest)],
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _ledger(manifest: Path, k: int) -> Path:
    return manifest.parent / ".picjobs" / f"nightly.shard-{k}-of-{SHARDS}.sqlite"


def _rows(ledger: Path, sql: str) -> list[tuple[object, ...]]:
    if not ledger.exists():
        return []
    conn = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []  # not created yet
    finally:
        conn.close()


def _keys(ledger: Path) -> set[str]:
    return {str(key) for (key,) in _rows(ledger, "SELECT key FROM items")}


def _submitted(ledger: Path) -> int:
    rows = _rows(ledger, "SELECT count(*) FROM items WHERE job_id IS NOT NULL")
    return int(rows[0][0]) if rows else 0  # type: ignore[call-overload]


def _wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.05)


def _finish(procs: dict[int, subprocess.Popen[bytes]]) -> dict[int, tuple[int, str]]:
    done = {}
    for k, proc in procs.items():
        _, err = proc.communicate(timeout=180)
        done[k] = (proc.returncode, err.decode())
    return done


def _throttled_share(emu: EmulatorThread) -> tuple[int, int]:
    stats = emu.running.backend.stats.snapshot()
    answers = sum(stats["responses"].values())
    return stats["responses"].get("429", 0), answers


def _report(manifest: Path) -> list[dict[str, object]]:
    result = CliRunner().invoke(
        cli, ["report", str(manifest), "--shards", str(SHARDS), "--format", "jsonl"]
    )
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines()]


def test_four_shards_at_once_process_every_object_exactly_once_within_the_quota(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    keys = [f"k/{i:04d}.png" for i in range(240)]
    put_images(data, keys)
    with emulator_thread(data, rate=100.0) as emu:
        manifest = write_manifest(tmp_path, emu.url, 'prefix = "k/"', "[limits]\nrate = 100\n")
        procs = {k: _start(manifest, f"{k}/{SHARDS}") for k in range(SHARDS)}
        results = _finish(procs)
        stats = emu.running.backend.stats.snapshot()
        throttled, answers = _throttled_share(emu)

    assert all(code == 0 for code, _ in results.values()), results
    assert stats["jobs_created"] == len(keys)
    assert stats["duplicate_submissions"] == 0
    assert sorted(s["input_object"] for s in stats["submissions"]) == keys
    assert throttled <= answers / 100, stats["responses"]
    owned = [_keys(_ledger(manifest, k)) for k in range(SHARDS)]
    assert sum(len(keys_k) for keys_k in owned) == len(set().union(*owned)) == len(keys)
    for k, keys_k in enumerate(owned):
        assert keys_k and all(shard_of(BUCKET, key, SHARDS) == k for key in keys_k)
    report = _report(manifest)
    assert sorted(str(row["key"]) for row in report) == keys
    assert {row["state"] for row in report} == {"success"}

    status = CliRunner().invoke(cli, ["status", str(manifest), "--shards", "4", "--json"])
    assert status.exit_code == 0
    info = json.loads(status.output)
    assert info["counts"]["success"] == info["total"] == len(keys)
    assert [entry["total"] for entry in info["per_shard"]] == [len(k) for k in owned]
    assert info["problems"] == []

    # The same manifest with another shard count is refused before anything is read.
    again = subprocess.run(
        [sys.executable, "-m", "orchestrator", "run", "--shard", "0/2", str(manifest)],
        env=env(),
        capture_output=True,
        timeout=60,
    )
    assert again.returncode == 2
    err = again.stderr.decode()
    assert err.count("\n") == 1
    assert "use 4 shards, not 2" in err and "--shard K/4" in err
    assert not (manifest.parent / ".picjobs" / "nightly.shard-0-of-2.sqlite").exists()


def test_a_shard_killed_mid_run_resumes_without_duplicates_and_the_others_run_on(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    keys = [f"k/{i:04d}.png" for i in range(160)]
    put_images(data, keys)
    victim = 1
    with emulator_thread(data, rate=100.0, progression="delay", job_seconds=0.5) as emu:
        manifest = write_manifest(tmp_path, emu.url, 'prefix = "k/"', "[limits]\nrate = 100\n")
        procs = {k: _start(manifest, f"{k}/{SHARDS}") for k in range(SHARDS)}
        victim_ledger = _ledger(manifest, victim)
        _wait_for(lambda: _submitted(victim_ledger) >= 5)
        procs[victim].kill()
        procs[victim].communicate()  # reaps it and closes its pipes
        others = _finish({k: p for k, p in procs.items() if k != victim})
        mine = len(_keys(victim_ledger))
        killed_at = _submitted(victim_ledger)
        rerun = _finish({victim: _start(manifest, f"{victim}/{SHARDS}")})
        stats = emu.running.backend.stats.snapshot()

    assert 5 <= killed_at < mine  # killed mid-run
    assert all(code == 0 for code, _ in others.values()), others
    assert rerun[victim][0] == 0, rerun
    assert stats["jobs_created"] == len(keys)
    assert stats["duplicate_submissions"] == 0
    for k in range(SHARDS):  # one run each, except the victim's two
        runs = _rows(_ledger(manifest, k), "SELECT count(*) FROM runs")
        assert runs == [(2 if k == victim else 1,)]
    report = _report(manifest)
    assert sorted(str(row["key"]) for row in report) == keys
    assert {row["state"] for row in report} == {"success"}
