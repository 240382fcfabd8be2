"""Reports from a ledger: completion reports (CSV, JSON lines), status counts, run summaries."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from prometheus_client import CollectorRegistry, Gauge, write_to_textfile

from orchestrator.ledger import ItemRow, Ledger
from orchestrator.manifest import DEFAULT_JOB

__all__ = [
    "COLUMNS",
    "failed_manifest",
    "job_status",
    "run_metrics",
    "status",
    "summary_line",
    "write_metrics",
    "write_report",
]

# `job` last: scripts that read the columns by position before jobs had names still work.
COLUMNS = (
    "bucket", "key", "output_bucket", "output_key", "job_id", "job_level", "state", "code",
    "message", "attempts", "submitted_at", "finished_at", "job",
)  # fmt: skip


def _record(row: ItemRow) -> dict[str, Any]:
    record = {name: getattr(row, name) for name in COLUMNS}
    record["state"] = str(row.state)
    record["job"] = row.job or DEFAULT_JOB
    return record


def write_report(rows: Iterable[ItemRow], out: IO[str], fmt: str) -> int:
    """Write one line per item; return how many."""
    n = 0
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow(["" if v is None else v for v in _record(row).values()])
            n += 1
    else:
        for row in rows:
            out.write(json.dumps(_record(row), ensure_ascii=False) + "\n")
            n += 1
    return n


def failed_manifest(rows: Iterable[ItemRow], *, with_output: bool = True) -> Iterator[list[str]]:
    """Rows of a header CSV that is itself a valid `[source] csv` input: each row names its
    job, so a manifest of several jobs re-runs only the failed one. A row's own `output` is
    valid only with a single job: leave it out (`with_output=False`) for several."""
    if with_output:
        yield ["bucket", "key", "output", "job_level", "job"]
        for row in rows:
            yield [row.bucket, row.key, row.output_key, str(row.job_level), row.job or DEFAULT_JOB]
        return
    yield ["bucket", "key", "job_level", "job"]
    for row in rows:
        yield [row.bucket, row.key, str(row.job_level), row.job or DEFAULT_JOB]


def job_status(ledger: Ledger, manifest_jobs: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Counts per state of each job with items, and whether the manifest still has it."""
    return {
        job: {"in_manifest": job in manifest_jobs, "total": sum(counts.values()), "counts": counts}
        for job, counts in ledger.job_counts().items()
    }


def status(ledger: Ledger, manifest_jobs: Sequence[str] = ()) -> dict[str, Any]:
    """Counts per state (in all, and per job), the last run, and while a run is going its rate
    and ETA."""
    counts = ledger.counts()
    last = ledger.last_run()
    running = last is not None and last.finished_at is None and ledger.lock_holder() is not None
    progress = json.loads(ledger.meta_get("progress") or "{}") if running else {}
    return {
        "ledger": str(ledger.path),
        "total": sum(counts.values()),
        "counts": counts,
        "jobs": job_status(ledger, manifest_jobs),
        "running": running,
        "rate": progress.get("rate", 0.0),
        "eta_seconds": progress.get("eta_seconds"),
        "last_success_at": ledger.meta_get("last_success_at"),
        "last_run": None
        if last is None
        else {
            "started_at": last.started_at,
            "finished_at": last.finished_at,
            "exit_code": last.exit_code,
        },
    }


def summary_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{state} {n}" for state, n in counts.items() if n) or "nothing to do"


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def run_metrics(
    manifest: str,
    counts: dict[str, int],
    *,
    seconds: float,
    exit_code: int,
    finished_at: str,
    last_success_at: str | None,
) -> CollectorRegistry:
    """The last run's gauges, for node_exporter's textfile collector."""
    registry = CollectorRegistry(auto_describe=True)

    def gauge(name: str, doc: str, value: float) -> None:
        Gauge(name, doc, ["manifest"], registry=registry).labels(manifest=manifest).set(value)

    items = Gauge(
        "picjobs_items",
        "Ledger items per state at the end of the last run.",
        ["manifest", "state"],
        registry=registry,
    )
    for state, n in counts.items():
        items.labels(manifest=manifest, state=state).set(n)
    gauge("picjobs_run_duration_seconds", "Wall time of the last run.", round(seconds, 3))
    gauge("picjobs_run_exit_code", "Exit code of the last run.", exit_code)
    gauge(
        "picjobs_run_finished_timestamp_seconds",
        "When the last run ended.",
        round(_epoch(finished_at)),
    )
    if last_success_at is not None:
        gauge(
            "picjobs_last_success_timestamp_seconds",
            "When a run last ended with exit 0.",
            round(_epoch(last_success_at)),
        )
    return registry


def write_metrics(path: Path, registry: CollectorRegistry) -> None:
    """Replace `path` atomically (written beside it, then renamed), so a collector never reads
    half a file."""
    write_to_textfile(str(path), registry)
