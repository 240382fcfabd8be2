"""The N shard ledgers of one manifest read as one: merged status counts and report rows, with
every shard ledger that is missing, being written by a run, or unreadable named."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.exceptions import PicjobsError
from orchestrator.ledger import ItemRow, Ledger
from orchestrator.manifest import Manifest
from orchestrator.report import status
from orchestrator.shard import ShardProblem, shard_paths

__all__ = ["ShardProblem", "ShardRows", "shard_paths", "shards_status"]


def _open(manifest: Manifest, path: Path) -> Ledger:
    return Ledger.open(path, journal=manifest.limits.ledger_journal)


def shards_status(manifest: Manifest, count: int) -> dict[str, Any]:
    """Per-shard status (as `report.status` gives for one ledger) and the totals of them all."""
    per_shard: list[dict[str, Any]] = []
    problems: list[ShardProblem] = []
    totals: dict[str, int] = {}
    rate, etas = 0.0, []
    for k, path in enumerate(shard_paths(manifest, count)):
        entry: dict[str, Any] = {"shard": k, "ledger": str(path)}
        if not path.exists():
            problems.append(ShardProblem(k, count, path, "missing"))
            per_shard.append({**entry, "condition": "missing", "total": 0, "counts": {}})
            continue
        try:
            with _open(manifest, path) as db:
                info = status(db)
                holder = db.lock_holder() if info["running"] else None
        except PicjobsError as exc:
            problems.append(ShardProblem(k, count, path, "unreadable", str(exc)))
            per_shard.append({**entry, "condition": "unreadable", "total": 0, "counts": {}})
            continue
        condition = "running" if info["running"] else "idle"
        if holder is not None:
            problems.append(ShardProblem(k, count, path, "running", str(holder)))
        per_shard.append({"shard": k, "condition": condition, **info})
        for state, n in info["counts"].items():
            totals[state] = totals.get(state, 0) + n
        if info["running"]:
            rate += info["rate"]
            if info["eta_seconds"] is not None:
                etas.append(info["eta_seconds"])
    return {
        "manifest": manifest.name,
        "shards": count,
        "total": sum(totals.values()),
        "counts": totals,
        "running": any(entry["condition"] == "running" for entry in per_shard),
        "rate": rate,
        "eta_seconds": max(etas) if etas else None,
        "missing": [str(p.ledger) for p in problems if p.condition == "missing"],
        "locked": [str(p.ledger) for p in problems if p.condition == "running"],
        "unreadable": [str(p.ledger) for p in problems if p.condition == "unreadable"],
        "problems": [str(p) for p in problems],
        "per_shard": per_shard,
    }


@dataclass
class ShardRows:
    """The items of every shard ledger in shard order, opening one ledger at a time (a
    thousand shards would otherwise hold thousands of files open). `problems` is complete
    once the rows are exhausted."""

    manifest: Manifest
    count: int
    states: Collection[str] | None = None
    problems: list[ShardProblem] = field(default_factory=list)

    def __iter__(self) -> Iterator[ItemRow]:
        for k, path in enumerate(shard_paths(self.manifest, self.count)):
            if not path.exists():
                self.problems.append(ShardProblem(k, self.count, path, "missing"))
                continue
            try:
                with _open(self.manifest, path) as db:
                    holder = db.lock_holder()
                    if holder is not None:
                        self.problems.append(
                            ShardProblem(k, self.count, path, "running", str(holder))
                        )
                    rows = db.iter_items(self.states)
                    try:
                        yield from rows
                    finally:
                        rows.close()
            except PicjobsError as exc:
                self.problems.append(ShardProblem(k, self.count, path, "unreadable", str(exc)))
