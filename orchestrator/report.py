"""Reports from a ledger: completion reports (CSV, JSON lines), status counts, run summaries."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from typing import IO, Any

from orchestrator.ledger import ItemRow, Ledger

__all__ = ["COLUMNS", "status", "summary_line", "write_report"]

COLUMNS = (
    "bucket", "key", "output_bucket", "output_key", "job_id", "job_level", "state", "code",
    "message", "attempts", "submitted_at", "finished_at",
)  # fmt: skip


def _record(row: ItemRow) -> dict[str, Any]:
    record = {name: getattr(row, name) for name in COLUMNS}
    record["state"] = str(row.state)
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


def failed_manifest(rows: Iterable[ItemRow]) -> Iterator[list[str]]:
    """Rows of a header CSV that is itself a valid `[source] csv` input."""
    yield ["bucket", "key", "output", "job_level"]
    for row in rows:
        yield [row.bucket, row.key, row.output_key, str(row.job_level)]


def status(ledger: Ledger) -> dict[str, Any]:
    counts = ledger.counts()
    last = ledger.last_run()
    return {
        "ledger": str(ledger.path),
        "total": sum(counts.values()),
        "counts": counts,
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
