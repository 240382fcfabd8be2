"""Items by the manifest job that planned them: the names in use, counts per job, and the SQL
that keeps a run to the jobs its manifest still has.

A NULL `job` is the item of a single unnamed `[job]` (and every row written before jobs had
names): it reads as the name `default`.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final, Self

from orchestrator.ledger.errors import guarded
from orchestrator.ledger.states import State
from orchestrator.ledger.store import Store
from orchestrator.manifest.model import DEFAULT_JOB

__all__ = ["JOB_NAME_SQL", "Jobs", "job_clause"]

JOB_NAME_SQL: Final = f"coalesce(job, '{DEFAULT_JOB}')"


def job_clause(jobs: Collection[str] | None) -> str:
    """` AND <the item's job is one of jobs>`, or nothing for None (every job)."""
    if jobs is None:
        return ""
    names = ", ".join("'" + name.replace("'", "''") + "'" for name in sorted(jobs))
    return f" AND {JOB_NAME_SQL} IN ({names})"


class Jobs(Store):
    """The per-job part of a Ledger."""

    @guarded("read ledger")
    def job_names(self) -> set[str]:
        """The name of every job that has items here (one pass over the items)."""
        rows = self._conn.execute(f"SELECT DISTINCT {JOB_NAME_SQL} FROM items")
        return {str(row[0]) for row in rows}

    @guarded("read ledger")
    def job_counts(self) -> dict[str, dict[str, int]]:
        """Counts per state for each job, jobs in the order their first item was planned."""
        rows = self._conn.execute(
            f"SELECT {JOB_NAME_SQL}, state, count(*), min(rowid) FROM items GROUP BY 1, 2"
        ).fetchall()
        first: dict[str, int] = {}
        for job, _state, _n, rowid in rows:
            first[job] = min(first.get(job, rowid), rowid)
        counts = {
            job: dict.fromkeys((s.value for s in State), 0)
            for job in sorted(first, key=first.__getitem__)
        }
        for job, state, n, _rowid in rows:
            counts[job][state] = n
        return counts

    @guarded("read ledger")
    def replanned_of(self, other: Self) -> dict[str, tuple[int, int]]:
        """Per job, how many items of `other` (a dry run's ledger) are new here although this
        ledger has an item of the same job for their object (the job's operation or output
        changed: those objects will be processed again), and how many of them keep the output
        of such an item (only the operation changed)."""
        conn = self._conn
        conn.execute("ATTACH DATABASE ? AS other", (str(other.path),))
        try:
            conn.execute("CREATE INDEX IF NOT EXISTS other.items_input ON items (bucket, key)")
            rows = conn.execute(
                f"SELECT coalesce(o.job, '{DEFAULT_JOB}'), count(DISTINCT o.item_id), "
                "count(DISTINCT CASE WHEN o.output_key = i.output_key THEN o.item_id END) "
                "FROM main.items AS i JOIN other.items AS o ON o.bucket = i.bucket "
                f"AND o.key = i.key AND coalesce(o.job, '{DEFAULT_JOB}') = coalesce(i.job, '{DEFAULT_JOB}') "
                "WHERE o.item_id != i.item_id AND NOT EXISTS "
                "(SELECT 1 FROM main.items AS m WHERE m.item_id = o.item_id) GROUP BY 1"
            ).fetchall()
            return {str(job): (int(n), int(same)) for job, n, same in rows}
        finally:
            conn.execute("DETACH DATABASE other")
