"""A ledger written by an older picjobs (tests/data/ledger-v2, schema 2) is read and resumed by
this one: same item ids, nothing submitted twice, new objects still picked up."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

OLD = Path(__file__).parent / "data" / "ledger-v2"
PHOTOS = Path(".picjobs") / "demo-data" / "demo-1250000000" / "photos"


def _items(ledger: Path) -> dict[str, tuple[str, str, str | None]]:
    """item_id -> (key, state, job_id), read without going through the code under test."""
    with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT item_id, key, state, job_id FROM items").fetchall()
    return {item_id: (key, state, job_id) for item_id, key, state, job_id in rows}


def _picjobs_run(manifest: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PICJOBS_ENDPOINT"}
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "run", "--quiet", str(manifest)],
        capture_output=True,
        text=True,
        env=env,
        cwd=manifest.parent,
        timeout=100,
        check=False,
    )


def test_an_old_ledger_resumes_with_nothing_submitted_and_then_picks_up_one_new_photo(
    tmp_path: Path,
) -> None:
    manifest = tmp_path / "demo.toml"
    shutil.copy(OLD / "demo.toml", manifest)
    ledger = tmp_path / ".picjobs" / "demo.sqlite"
    ledger.parent.mkdir()
    shutil.copy(OLD / "demo.sqlite", ledger)
    # Read the ids from a copy: even a read-only open of a WAL database leaves -wal/-shm files.
    before = _items(Path(shutil.copy(OLD / "demo.sqlite", tmp_path / "reference.sqlite")))
    assert len(before) == 8

    resumed = _picjobs_run(manifest)
    assert resumed.returncode == 0, resumed.stderr
    assert "demo: success 8 (0 submitted this run" in resumed.stdout
    assert _items(ledger) == before

    new = tmp_path / PHOTOS / "2026" / "lake.jpg"
    new.parent.mkdir()
    shutil.copy(tmp_path / PHOTOS / "2024" / "beach.jpg", new)
    grown = _picjobs_run(manifest)
    assert grown.returncode == 0, grown.stderr
    assert "demo: success 9 (1 submitted this run" in grown.stdout
    after = _items(ledger)
    assert {k: v for k, v in after.items() if k in before} == before
    [(key, state, job_id)] = [v for k, v in after.items() if k not in before]
    assert (key, state) == ("photos/2026/lake.jpg", "success")
    assert job_id
