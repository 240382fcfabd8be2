"""Scenario 11: `picjobs report --format html` over a ledger of `manifest_rows` items.

The ledger is written directly with SQL (one recursive INSERT per table), shaped like ten
nightly runs: the last one carries half the items, 1 % of items failed in six large groups and
about 1,400 groups of one (a Message naming its key), 0.1 % cancelled, the last thousand
pending, and a throttled quarter of an hour in the last run. Then the real command renders it.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.harness import child_env, run_measured, write_keys_csv, write_manifest
from benchmarks.report import Figure, at_most, info
from orchestrator.ledger import Ledger

if TYPE_CHECKING:
    from benchmarks.scenarios import Bench

__all__ = ["html_report", "synthetic_ledger"]

_BASE = "2026-11-01 02:10:00"
_RUNS = 10

# Item i belongs to run r; the last run takes the second half, the others share the first.
_ITEMS = """
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < :rows - 1),
shaped AS (
  SELECT i,
    CASE WHEN i >= :half THEN :last ELSE i / :share END AS run,
    CASE WHEN i >= :half THEN i - :half ELSE i % :share END AS nth,
    CASE WHEN i >= :rows - 1000 THEN 'pending' WHEN i % 100 = 7 THEN 'failed'
         WHEN i % 1000 = 3 THEN 'cancelled' ELSE 'success' END AS state,
    ((i * 7919) % 10007) / 10007.0 AS u
  FROM n
),
timed AS (
  SELECT *, julianday(:base) + run + nth / 100.0 / 86400 AS sent,
    1.5 + u * u * u * u * 900 AS latency
  FROM shaped
)
INSERT INTO items (item_id, bucket, key, output_bucket, output_region, output_key, job_level,
  state, job_id, attempts, code, message, created_at, updated_at, submitted_at, finished_at)
SELECT printf('id%08d', i), 'bench-1250000000', printf('photos/%03d/img-%07d.jpg', i / 10000, i),
  'out-1250000000', 'ap-chongqing', printf('thumbs/%03d/img-%07d.webp', i / 10000, i), i % 3,
  state,
  CASE WHEN state = 'pending' THEN NULL ELSE printf('c%031d', i) END,
  CASE WHEN state = 'pending' THEN 0 ELSE 1 END,
  CASE WHEN state != 'failed' THEN NULL
       ELSE CASE (i / 100) % 7 WHEN 0 THEN 'InvalidArgument' WHEN 1 THEN 'ResourceNotFound'
         WHEN 2 THEN 'InternalError' WHEN 3 THEN 'InvalidImageFormat' WHEN 4 THEN 'Timeout'
         WHEN 5 THEN 'ImageTooLarge' ELSE 'ResourceNotFound' END END,
  CASE WHEN state != 'failed' THEN NULL
       WHEN (i / 100) % 7 = 6 THEN printf('the input object does not exist: photos/%03d/img-%07d.jpg', i / 10000, i)
       ELSE printf('failure kind %d: the processing could not complete', (i / 100) % 7) END,
  strftime('%Y-%m-%dT%H:%M:%fZ', julianday(:base) + run),
  strftime('%Y-%m-%dT%H:%M:%fZ', sent + latency / 86400),
  CASE WHEN state = 'pending' THEN NULL ELSE strftime('%Y-%m-%dT%H:%M:%fZ', sent) END,
  CASE WHEN state = 'pending' THEN NULL ELSE strftime('%Y-%m-%dT%H:%M:%fZ', sent + latency / 86400) END
FROM timed
"""
_LOG = """
INSERT INTO attempts_log (item, item_id, attempt, job_id, outcome, code, message, at)
SELECT rowid, item_id, 1, job_id, 'submitted', NULL, NULL, submitted_at FROM items
WHERE submitted_at IS NOT NULL
UNION ALL
SELECT rowid, item_id, 1, job_id, state, code, message, finished_at FROM items
WHERE state IN ('success', 'failed', 'cancelled')
ORDER BY 8
"""


def synthetic_ledger(path: Path, rows: int) -> None:
    """A ledger of `rows` items after ten nightly runs (see the module's docstring)."""
    Ledger.open(path).close()  # the current schema
    half = rows // 2
    share = max(1, -(-half // (_RUNS - 1)))
    with sqlite3.connect(path) as conn:
        conn.execute(
            _ITEMS,
            {"rows": rows, "half": half, "share": share, "last": _RUNS - 1, "base": _BASE},
        )
        conn.execute(_LOG)
        spans = conn.execute(
            "SELECT min(submitted_at), max(finished_at), count(*) FROM items "
            "WHERE submitted_at IS NOT NULL GROUP BY substr(created_at, 1, 10) ORDER BY 1"
        ).fetchall()
        for run_id, (started, finished, count) in enumerate(spans, start=1):
            conn.execute(
                "INSERT INTO runs (run_id, started_at, finished_at, pid, host, args, exit_code, "
                "counts) VALUES (?, ?, ?, 1, 'bench', '{}', ?, ?)",
                (run_id, started, finished, 1, json.dumps({"success": count})),
            )
        started = conn.execute("SELECT max(started_at) FROM runs").fetchone()[0]
        first = int(conn.execute("SELECT unixepoch(?)", (started,)).fetchone()[0])
        throttled = {str(first + 1200 + s): 3 + s % 5 for s in range(900)}
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)",
            (f"throttled:{len(spans)}", json.dumps(throttled)),
        )


def html_report(bench: Bench) -> list[Figure]:
    rows = bench.sizes.manifest_rows
    folder = bench.run_dir("html-report")
    ledger = folder / "report.sqlite"
    bench.progress(f"11: writing a synthetic ledger of {rows:,} items")
    synthetic_ledger(ledger, rows)
    csv = write_keys_csv(folder / "keys.csv", ["unused.jpg"])
    manifest = write_manifest(folder / "manifest.toml", name="report", csv=csv, rate=100)
    page = folder / "report.html"
    bench.progress(f"11: report --format html over {rows:,} items")
    command = [sys.executable, "-m", "orchestrator", "report", str(manifest)]
    command += ["--ledger", str(ledger), "--format", "html", "-o", str(page)]
    run = run_measured(command, env=child_env(), cwd=folder, timeout=120.0, cpus=bench.client_cpus)
    note = bench.check("report --format html", run)
    size = page.stat().st_size / 1024 if page.exists() and not note else None
    name = f"11 html report, {rows:,} items"
    return [
        at_most(name, "wall time", None if note else run.wall, 30, "s", note or run.other_load),
        at_most(name, "peak RSS", None if note else run.max_rss_mib, 200, "MiB"),
        at_most(name, "page size", size, 2048, "KiB"),
        info(name, "CPU", None if note else run.cpu, "s", "user + system, start-up included"),
    ]
