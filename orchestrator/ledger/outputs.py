"""Outputs that already exist (skip_existing): a listing kept in a temporary table, compared in SQL.

The listing of an output prefix goes into `temp.outputs` page by page, so a million existing
outputs never sit in Python's memory; the comparison with the pending items is one join.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from orchestrator.ledger.errors import guarded
from orchestrator.ledger.states import FINAL_STATES, PENDING, SKIPPED, Outcome, State, sql_list
from orchestrator.ledger.store import Store

__all__ = ["OUTPUTS_TABLE", "OutputRow", "Outputs", "SkipRule"]

# (key, etag, last_modified) of one listed object; times are ISO 8601 UTC like the items'.
OutputRow = tuple[str, str | None, str | None]

OUTPUTS_TABLE: Final = (
    "CREATE TEMP TABLE IF NOT EXISTS outputs (bucket TEXT NOT NULL, key TEXT NOT NULL, "
    "etag TEXT, last_modified TEXT, PRIMARY KEY (bucket, key)) WITHOUT ROWID"
)

_ROWS_PER_INSERT: Final = 100  # 300 parameters: within the 999 of older SQLite builds


@dataclass(frozen=True)
class SkipRule:
    """skip_existing for the items of one job (`job`, its label) with outputs in `bucket`: what
    `skip_listed` compares, for a bulk load to apply as it inserts (see `Loading.loading`)."""

    job: str | None
    bucket: str
    newer: bool
    code: str
    message: str


# The pending items of one job whose output was listed (`{t}` names the items table). With
# `newer`, only those whose output is at or after their input; where the input's time is
# unknown, `newer` behaves as "exists". An item skipped before and pending again was asked
# for (its input changed, with reprocess_changed, or a run was forced): never skipped again.
# Written as EXISTS, so that SQLite walks the items and looks each output up by its key.
_OUTPUT_OF: Final = (
    "FROM temp.outputs AS o WHERE o.bucket = {t}.output_bucket AND o.key = {t}.output_key"
)
_MATCH: Final = (
    f"{{t}}.state = '{PENDING}' AND {{t}}.job IS :job AND {{t}}.output_bucket = :bucket "
    "AND EXISTS (SELECT 1 {output_of} AND (NOT :newer OR {t}.last_modified IS NULL "
    "OR o.last_modified >= {t}.last_modified)) AND NOT {skipped_before}"
)
_SKIPPED_BEFORE: Final = (
    "EXISTS (SELECT 1 FROM attempts_log AS a "
    f"WHERE a.item = {{t}}.rowid AND a.outcome = '{Outcome.SKIPPED}')"
)

# The schema version from which the log is found by its item's row (`attempts_log.item`).
_LOG_BY_ROW: Final = 4


class Outputs(Store):
    """The skip_existing part of a Ledger."""

    # Within a bulk load with skip rules, per rule's (job, bucket): how many items it inserted
    # skipped, of those how many of unknown input time, not counted by `skip_listed` yet, and
    # the items' rowid through which they are counted.
    _loaded_skips: dict[tuple[str | None, str], list[int]] | None = None

    @guarded("write ledger")
    def clear_outputs(self, bucket: str, prefix: str) -> None:
        """Forget what `temp.outputs` holds under `prefix` in `bucket`, before listing it."""
        with self.atomic():
            self._conn.execute(OUTPUTS_TABLE)
            self._conn.execute(
                "DELETE FROM temp.outputs WHERE bucket = ? AND substr(key, 1, ?) = ?",
                (bucket, len(prefix), prefix),
            )

    @guarded("write ledger")
    def add_outputs(self, bucket: str, rows: Iterable[OutputRow]) -> None:
        """One listing page into `temp.outputs` (a key listed twice is kept once)."""
        # 100 rows a statement: a page is 1,000, and a statement per row cost twice as much.
        rows = list(rows)
        row = f"({_literal(bucket)}, ?, ?, ?)"
        with self.atomic():
            for start in range(0, len(rows), _ROWS_PER_INSERT):
                part = rows[start : start + _ROWS_PER_INSERT]
                self._conn.execute(
                    "INSERT OR IGNORE INTO temp.outputs VALUES " + ", ".join([row] * len(part)),
                    list(itertools.chain.from_iterable(part)),
                )

    @guarded("write ledger")
    def skip_listed(
        self, bucket: str, job: str | None, *, newer: bool, code: str, message: str
    ) -> int:
        """Pending items of `job` whose output in `bucket` was listed become skipped, with the
        output's ETag and time as their result. Returns how many were skipped, with those a
        bulk load skipped as it inserted them (`SkipRule`) and this did not count yet.

        The skip is the item's row; the log gets it only when the item leaves the skipped
        state (`unskip`, and a bulk load's refresh of a changed input), so a million skips
        write no million log rows. That log row is what keeps such an item from being skipped
        again. (A trigger would log it wherever the state changes, but made every UPDATE of
        an item's state cost twice as much.)"""
        params = {"job": job, "bucket": bucket, "newer": newer, "now": self._now(), "code": code,
                  "message": message}  # fmt: skip
        loaded = self.count_loaded_skips(bucket, job)[0]  # before this adds skips of its own
        with self.atomic():
            changed = self._conn.execute(
                f"UPDATE items SET state = '{SKIPPED}', code = :code, message = :message, "
                "result = (SELECT json_object('etag', o.etag, 'last_modified', o.last_modified) "
                f"{_OUTPUT_OF.format(t='items')}), finished_at = :now, updated_at = :now "
                "WHERE " + _match("items"),
                params,
            ).rowcount
        counted = (self._loaded_skips or {}).get((job, bucket))
        if counted is not None:
            counted[0] = counted[1] = 0
        return int(changed) + loaded

    @guarded("read ledger")
    def count_loaded_skips(self, bucket: str, job: str | None) -> tuple[int, int]:
        """(items of `job` the bulk load under way skipped as it inserted them, not counted by
        `skip_listed` yet; of which the input's time is unknown)."""
        counted = (self._loaded_skips or {}).get((job, bucket))
        if counted is None:
            return 0, 0
        # Counted when asked, in one pass over the rows inserted since: not per batch, and
        # per rule, which needs no sort (a GROUP BY over a million rows cost a second).
        conn = self._conn
        through = int(conn.execute("SELECT coalesce(max(rowid), 0) FROM items").fetchone()[0])
        if through > counted[2]:
            skipped, unknown = conn.execute(
                "SELECT count(*), count(*) - count(last_modified) FROM items WHERE rowid > ? "
                f"AND rowid <= ? AND state = '{SKIPPED}' AND job IS ? AND output_bucket = ?",
                (counted[2], through, job, bucket),
            ).fetchone()
            counted[0] += skipped
            counted[1] += unknown
            counted[2] = through
        return counted[0], counted[1]

    @guarded("read ledger")
    def count_listed(
        self,
        bucket: str,
        job: str | None,
        *,
        newer: bool,
        unless_final_in: Path | None = None,
        keep: State | None = None,
    ) -> tuple[int, int]:
        """(pending items `skip_listed` would skip, of which the input's time is unknown).

        With `unless_final_in` (the real ledger, for a dry run's scratch one), items final
        there are left out, but those in state `keep` there, and without `keep` those it
        skipped before. Only read: a dry run never locks the real ledger."""
        sql = "SELECT count(*), count(*) - count(i.last_modified) FROM items AS i WHERE " + _match(
            "i"
        )
        params = {"job": job, "bucket": bucket, "newer": newer}
        if unless_final_in is None:
            return _pair(self._conn.execute(sql, params).fetchone())
        finals = sql_list(FINAL_STATES - ({keep} if keep else set()))
        sql += (
            " AND NOT EXISTS (SELECT 1 FROM real.items AS r "
            f"WHERE r.item_id = i.item_id AND r.state IN {finals})"
        )
        self._conn.execute("ATTACH DATABASE ? AS real", (str(unless_final_in),))
        try:
            if keep is None:  # an item the real ledger skipped before is not skipped again
                sql += " AND NOT " + self._skipped_in_real()
            return _pair(self._conn.execute(sql, params).fetchone())
        finally:
            self._conn.execute("DETACH DATABASE real")

    def _skipped_in_real(self) -> str:
        """`_SKIPPED_BEFORE` for item `i` in the attached real ledger, which this picjobs may
        not have migrated yet: before schema 4 its log is found by item_id."""
        version = self._conn.execute("PRAGMA real.user_version").fetchone()[0]
        if version < _LOG_BY_ROW:
            return (
                "EXISTS (SELECT 1 FROM real.attempts_log AS a "
                f"WHERE a.item_id = i.item_id AND a.outcome = '{Outcome.SKIPPED}')"
            )
        return (
            "EXISTS (SELECT 1 FROM real.items AS r JOIN real.attempts_log AS a ON a.item = r.rowid "
            f"WHERE r.item_id = i.item_id AND a.outcome = '{Outcome.SKIPPED}')"
        )

    @guarded("read ledger")
    def pending_of(self, job: str | None) -> int:
        sql = f"SELECT count(*) FROM items WHERE state = '{PENDING}' AND job IS ?"
        return int(self._scalar(sql, (job,)))

    @guarded("write ledger")
    def unskip(self, job: str | None) -> int:
        """`--force`: the skipped items of `job` go back to pending, to be processed this run."""
        params = {"job": job, "now": self._now()}
        where = f"WHERE state = '{SKIPPED}' AND job IS :job"
        with self.atomic():
            # The skip first (see `skip_listed`; an older picjobs logged it already), then its release.
            self._conn.execute(
                "INSERT INTO attempts_log (item, item_id, attempt, job_id, outcome, code, "
                f"message, at) SELECT rowid, item_id, attempts, NULL, '{Outcome.SKIPPED}', code, "
                f"message, coalesce(finished_at, updated_at) FROM items {where} AND NOT "
                + _SKIPPED_BEFORE.format(t="items"),
                params,
            )
            self._conn.execute(
                "INSERT INTO attempts_log (item, item_id, attempt, job_id, outcome, code, "
                f"message, at) SELECT rowid, item_id, attempts, NULL, '{Outcome.RELEASED}', "
                "NULL, 'forced', :now "
                f"FROM items {where}",
                params,
            )
            changed = self._conn.execute(
                f"UPDATE items SET state = '{PENDING}', code = NULL, message = NULL, "
                f"result = NULL, finished_at = NULL, updated_at = :now {where}",
                params,
            ).rowcount
        return int(changed)


def _match(table: str) -> str:
    return _MATCH.format(
        t=table,
        output_of=_OUTPUT_OF.format(t=table),
        skipped_before=_SKIPPED_BEFORE.format(t=table),
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _pair(row: tuple[int, int]) -> tuple[int, int]:
    return int(row[0]), int(row[1])
