"""What the ledger holds: counts, the items waiting on something, and every row for reports."""

from __future__ import annotations

import json
from collections.abc import Collection, Generator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from orchestrator.items import Item
from orchestrator.ledger.errors import guarded, translating
from orchestrator.ledger.jobs import job_clause
from orchestrator.ledger.schema import ITEM_COLUMNS, ROW_COLUMNS, ROW_EXTRAS
from orchestrator.ledger.states import FINAL_STATES, PENDING, SUBMITTED, UNKNOWN, State, sql_list
from orchestrator.ledger.store import Store
from orchestrator.ledger.transitions import ClaimedItem
from orchestrator.timefmt import parse_utc

__all__ = ["ItemRow", "Queries"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemRow(Item):
    """Every column of one ledger row, for reports."""

    state: State
    job_id: str | None
    attempts: int
    code: str | None
    message: str | None
    result: dict[str, Any] | None
    created_at: str
    updated_at: str
    submitted_at: str | None
    finished_at: str | None


class Queries(Store):
    """The reading part of a Ledger."""

    @guarded("read ledger")
    def counts(self, jobs: Collection[str] | None = None) -> dict[str, int]:
        """Items per state; of `jobs` only, when given (see `ledger.jobs`)."""
        counts = dict.fromkeys((state.value for state in State), 0)
        where = "" if jobs is None else f"WHERE 1{job_clause(jobs)}"
        counts.update(
            self._conn.execute(f"SELECT state, count(*) FROM items {where} GROUP BY state")
        )
        return counts

    @guarded("read ledger")
    def failure_codes(self, limit: int) -> list[tuple[str, int, str]]:
        """The largest groups of failed items by Code: (code, count, one example key)."""
        rows = self._conn.execute(
            "SELECT coalesce(code, ''), count(*), min(key) FROM items "
            f"WHERE state = '{State.FAILED}' GROUP BY code ORDER BY count(*) DESC, code LIMIT ?",
            (limit,),
        )
        return [(code, int(count), key) for code, count, key in rows]

    @guarded("read ledger")
    def count_final_of(self, other: Self, states: Collection[State] = FINAL_STATES) -> int:
        """How many of the items in `other` (another ledger file) are in a final state here
        (or in one of `states`): one join, since a million lookups from Python cost minutes."""
        conn = self._conn
        conn.execute("ATTACH DATABASE ? AS other", (str(other.path),))
        try:
            return int(
                conn.execute(
                    "SELECT count(*) FROM other.items AS o JOIN main.items AS i "
                    f"ON i.item_id = o.item_id WHERE i.state IN {sql_list(states)}"
                ).fetchone()[0]
            )
        finally:
            conn.execute("DETACH DATABASE other")

    @guarded("read ledger")
    def total(self) -> int:
        return int(self._scalar("SELECT count(*) FROM items"))

    @guarded("read ledger")
    def pending_count(self, jobs: Collection[str] | None = None) -> int:
        return int(
            self._scalar(f"SELECT count(*) FROM items WHERE state = '{PENDING}'{job_clause(jobs)}")
        )

    @guarded("read ledger")
    def outstanding_count(self) -> int:
        return int(self._scalar(f"SELECT count(*) FROM items WHERE state = '{SUBMITTED}'"))

    @guarded("read ledger")
    def unknown_items(self, limit: int) -> list[ClaimedItem]:
        rows = self._conn.execute(
            f"SELECT {ITEM_COLUMNS}, attempts FROM items WHERE state = '{UNKNOWN}' "
            "ORDER BY rowid LIMIT ?",
            (limit,),
        )
        return [ClaimedItem(*row[:-1], attempts=row[-1]) for row in rows]

    @guarded("read ledger")
    def past_job_ids(self, item_id: str) -> set[str]:
        """Every JobId this item has had: earlier jobs that reconciliation must not adopt."""
        rows = self._conn.execute(
            "SELECT DISTINCT job_id FROM attempts_log "
            "WHERE item = (SELECT rowid FROM items WHERE item_id = ?) AND job_id IS NOT NULL",
            (item_id,),
        )
        return {row[0] for row in rows}

    @guarded("read ledger")
    def unknown_since(self) -> datetime | None:
        """When the oldest item of unknown outcome was last touched, or None if there is none."""
        value = self._scalar(f"SELECT min(updated_at) FROM items WHERE state = '{UNKNOWN}'")
        return None if value is None else parse_utc(str(value))

    @guarded("read ledger")
    def outstanding_job_ids(self, limit: int, after_rowid: int = 0) -> list[tuple[int, str]]:
        """(rowid, job_id) of submitted items after `after_rowid`, to page through them."""
        rows = self._conn.execute(
            f"SELECT rowid, job_id FROM items WHERE state = '{SUBMITTED}' AND rowid > ? "
            "ORDER BY rowid LIMIT ?",
            (after_rowid, limit),
        )
        return [(int(rowid), str(job_id)) for rowid, job_id in rows]

    @guarded("read ledger")
    def level_counts(self, state: str) -> dict[int, int]:
        sql = "SELECT job_level, count(*) FROM items WHERE state = ? GROUP BY job_level"
        return {int(level): int(count) for level, count in self._conn.execute(sql, (state,))}

    def iter_items(self, states: Collection[str] | None = None) -> Generator[ItemRow]:
        """Every row in insertion order, streamed; only those in `states` when given."""
        params = () if states is None else tuple(states)
        where = "" if states is None else f"WHERE state IN ({', '.join('?' * len(params))})"
        with translating(self.path, "read ledger"):
            cursor = self._conn.execute(
                f"SELECT {ROW_COLUMNS} FROM items {where} ORDER BY rowid", params
            )
            try:
                for row in cursor:
                    extra = dict(zip(ROW_EXTRAS, row[12:], strict=True))
                    extra["state"] = State(extra["state"])
                    extra["result"] = None if row[17] is None else json.loads(row[17])
                    yield ItemRow(*row[:12], **extra)
            finally:
                cursor.close()
