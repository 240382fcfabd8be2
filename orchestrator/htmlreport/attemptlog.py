"""The attempt log read as a time series, by rowid ranges."""

from __future__ import annotations

import sqlite3

__all__ = ["AttemptLog"]


class AttemptLog:
    """The attempt log as a time series. Rows are appended as things happen, so `at` rises with
    the rowid: a moment maps to a rowid by binary search, and any time window is a rowid range
    that SQLite sums without sorting anything."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        low, high = conn.execute("SELECT min(rowid), max(rowid) FROM attempts_log").fetchone()
        self.low, self.high = (1, 0) if low is None else (int(low), int(high))

    def seek(self, moment: str, *, after: bool = False) -> int:
        """The first rowid whose time is at or (with `after`) past `moment`."""
        lo, hi = self.low, self.high + 1
        while lo < hi:
            mid = (lo + hi) // 2
            row = self._conn.execute(
                "SELECT rowid, at FROM attempts_log WHERE rowid >= ? ORDER BY rowid LIMIT 1",
                (mid,),
            ).fetchone()
            if row is None or (row[1] > moment if after else row[1] >= moment):
                hi = mid
            else:
                lo = int(row[0]) + 1
        return lo

    def tally(self, first: int, stop: int) -> tuple[int, int, int, int]:
        """Submitted (or adopted), success, failed, cancelled among rowids [first, stop)."""
        row = self._conn.execute(
            "SELECT total(outcome IN ('submitted', 'adopted')), total(outcome = 'success'), "
            "total(outcome = 'failed'), total(outcome = 'cancelled') FROM attempts_log "
            "WHERE rowid >= ? AND rowid < ?",
            (first, stop),
        ).fetchone()
        return int(row[0]), int(row[1]), int(row[2]), int(row[3])
