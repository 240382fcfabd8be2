"""Real `picjobs run` processes, interrupted by signals at arbitrary moments, then resumed."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orchestrator.emulator.faults import FaultConfig
from orchestrator.ledger import Ledger

from .support import emulator_thread, env, put_images, write_manifest

pytestmark = pytest.mark.slow


def _start(manifest: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "run", "--quiet", str(manifest)],
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _states(ledger: Path) -> dict[str, int]:
    if not ledger.exists():
        return {}
    conn = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=5)
    try:
        return dict(conn.execute("SELECT state, count(*) FROM items GROUP BY state").fetchall())
    except sqlite3.OperationalError:
        return {}  # not created yet
    finally:
        conn.close()


def _wait_for(predicate: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.05)


def _check(ledger: Path) -> None:
    with Ledger.open(ledger) as db:
        assert db.integrity_check() == "ok"


def test_sigkill_at_random_moments_then_a_final_run_loses_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    keys = [f"k/{i:04d}.png" for i in range(400)]
    put_images(data, keys)
    rng = random.Random(20261123)
    with emulator_thread(data, progression="delay", job_seconds=0.4) as emu:
        # 400 jobs at 40/s take ten seconds to submit: long enough for twelve kills.
        manifest = write_manifest(tmp_path, emu.url, 'prefix = "k/"', "[limits]\nrate = 40\n")
        ledger = manifest.parent / ".picjobs" / "nightly.sqlite"
        kills = 0
        for _ in range(12):
            with _start(manifest) as proc:  # closes the pipes on the way out
                time.sleep(rng.uniform(0.5, 2.0))
                if proc.poll() is not None:
                    break
                proc.kill()
                proc.wait()
            kills += 1
            _check(ledger)
        final = _start(manifest)
        _, err = final.communicate(timeout=120)
        stats = emu.running.backend.stats.snapshot()

    assert kills >= 10
    assert final.returncode == 0, err.decode()
    assert _states(ledger) == {"success": 400}
    assert stats["duplicate_submissions"] == 0
    assert stats["jobs_created"] == 400
    assert sorted(s["input_object"] for s in stats["submissions"]) == keys
    _check(ledger)


@pytest.mark.parametrize("signals", [1, 2])
def test_sigterm_stops_submitting_commits_and_exits_75(tmp_path: Path, signals: int) -> None:
    data = tmp_path / "data"
    put_images(data, [f"k/{i:03d}.png" for i in range(300)])
    # Jobs take an hour, so the run is still busy when the signal comes.
    with emulator_thread(data, progression="delay", job_seconds=3600) as emu:
        manifest = write_manifest(tmp_path, emu.url, 'prefix = "k/"', "[limits]\nrate = 100\n")
        ledger = manifest.parent / ".picjobs" / "nightly.sqlite"
        proc = _start(manifest)
        _wait_for(lambda: _states(ledger).get("submitted", 0) >= 20)
        for _ in range(signals):
            proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        created = emu.running.backend.stats.snapshot()["jobs_created"]

    assert proc.returncode == 75
    states = _states(ledger)
    assert states.get("submitting", 0) == 0 or signals == 2
    assert states["pending"] > 0
    assert (
        states.get("submitted", 0) + states.get("unknown", 0) + states.get("submitting", 0)
        >= created - 1
    )
    _check(ledger)


def test_a_run_killed_with_responses_lost_after_creation_resumes_without_duplicates(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    keys = [f"k/{i:03d}.png" for i in range(150)]
    put_images(data, keys)
    with emulator_thread(data) as emu:
        lost = FaultConfig(reset_after=0.3, routes=("POST /pic_jobs",), seed=3)
        emu.running.emulator.faults.configure(lost)
        manifest = write_manifest(tmp_path, emu.url, 'prefix = "k/"')
        first = _start(manifest)
        first.communicate(timeout=120)
        emu.running.emulator.faults.configure(FaultConfig())
        second = _start(manifest)
        second.communicate(timeout=120)
        stats = emu.running.backend.stats.snapshot()
    ledger = manifest.parent / ".picjobs" / "nightly.sqlite"
    assert second.returncode == 0
    assert _states(ledger) == {"success": 150}
    assert stats["duplicate_submissions"] == 0
    assert stats["faults"]
