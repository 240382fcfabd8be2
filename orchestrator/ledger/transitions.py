"""An item's way through the states: claims, CI's answers, recovery; each move logged."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from orchestrator.items import Item
from orchestrator.ledger.errors import guarded
from orchestrator.ledger.jobs import job_clause
from orchestrator.ledger.schema import ITEM_COLUMNS, encode_json
from orchestrator.ledger.states import (
    CANCELLED,
    FAILED,
    FINAL_STATES,
    PENDING,
    SUBMITTED,
    SUBMITTING,
    UNKNOWN,
    Outcome,
    State,
    sql_list,
)
from orchestrator.ledger.store import Store
from orchestrator.timefmt import format_utc

__all__ = ["ClaimedItem", "JobUpdate", "Transitions"]

_INSERT_LOG: Final = (
    "INSERT INTO attempts_log (item_id, attempt, job_id, outcome, code, message, at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_SENDING: Final = sql_list([SUBMITTING, UNKNOWN])
_TO_SUBMITTED: Final = (
    f"UPDATE items SET updated_at = ?1, submitted_at = ?1, state = '{SUBMITTED}', job_id = ?3, "
    f"code = NULL, message = NULL WHERE item_id = ?2 AND state IN {_SENDING}"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimedItem(Item):
    """An item handed to the submitter, with the number of attempts including this one."""

    attempts: int


@dataclass(frozen=True, slots=True)
class JobUpdate:
    """What describing one job told us, in ledger terms (the tracker translates CI's words).

    `finished_at` is CI's EndTime, None while CI says '-'.
    """

    job_id: str
    state: State
    code: str | None = None
    message: str | None = None
    result: dict[str, Any] | None = None
    finished_at: datetime | None = None


class Transitions(Store):
    """The submission part of a Ledger."""

    @guarded("write ledger")
    def claim(self, limit: int, jobs: Collection[str] | None = None) -> list[ClaimedItem]:
        """Move up to `limit` pending items, highest level first, to submitting; return them.

        With `jobs`, only items of those jobs (see `ledger.jobs`)."""
        if limit <= 0:
            return []
        now = self._now()
        with self.atomic():
            if jobs is None:
                rows = self._conn.execute(
                    f"SELECT rowid, {ITEM_COLUMNS}, attempts + 1 FROM items "
                    f"WHERE state = '{PENDING}' ORDER BY job_level DESC, rowid LIMIT ?",
                    (limit,),
                ).fetchall()
            else:
                rows = self._claim_rows(limit, job_clause(jobs))
            self._conn.executemany(
                f"UPDATE items SET state = '{SUBMITTING}', attempts = attempts + 1, "
                "updated_at = ? WHERE rowid = ?",
                [(now, row[0]) for row in rows],
            )
        return [ClaimedItem(*row[1:-1], attempts=row[-1]) for row in rows]

    def _claim_rows(self, limit: int, jobs: str) -> list[Any]:
        """The rows `claim` takes when only some jobs' items may go. The items of the other jobs
        stay pending ahead of the index position claims have reached: each claim starting from
        the top would walk past all of them again, so it starts after the last item taken."""
        select = f"SELECT rowid, {ITEM_COLUMNS}, attempts + 1 FROM items WHERE state = '{PENDING}'"
        rows: list[Any] = []
        if self._claim_floor is not None:
            level, after = self._claim_floor
            rows = self._conn.execute(
                f"{select} AND job_level = ? AND rowid > ?{jobs} ORDER BY rowid LIMIT ?",
                (level, after, limit),
            ).fetchall()
            if len(rows) < limit:
                rows += self._conn.execute(
                    f"{select} AND job_level < ?{jobs} ORDER BY job_level DESC, rowid LIMIT ?",
                    (level, limit - len(rows)),
                ).fetchall()
        if not rows:  # from the top: the first claim, or nothing left after the last one
            rows = self._conn.execute(
                f"{select}{jobs} ORDER BY job_level DESC, rowid LIMIT ?", (limit,)
            ).fetchall()
        if rows:
            self._claim_floor = (rows[-1][7], rows[-1][0])  # job_level, rowid
        return rows

    def _transition(self, sql: str, rows: Iterable[tuple[Outcome, tuple[Any, ...]]]) -> int:
        """Run `sql` (an UPDATE whose first parameter is the time) once per (outcome, params),
        and log an attempt for every row it changed."""
        now = self._now()
        log: list[tuple[Any, ...]] = []
        with self.atomic():
            for outcome, params in rows:
                for item_id, attempt, job_id, code, message in self._conn.execute(
                    f"{sql} RETURNING item_id, attempts, job_id, code, message", (now, *params)
                ):
                    log.append((item_id, attempt, job_id, outcome, code, message, now))
            self._conn.executemany(_INSERT_LOG, log)
        return len(log)

    @guarded("write ledger")
    def mark_submitted(self, pairs: Iterable[tuple[str, str]]) -> int:
        """(item_id, job_id): CI accepted the job."""
        return self._transition(_TO_SUBMITTED, ((Outcome.SUBMITTED, pair) for pair in pairs))

    @guarded("write ledger")
    def adopt(self, pairs: Iterable[tuple[str, str]]) -> int:
        """(item_id, job_id): reconciliation found the job of an unknown or submitting item."""
        return self._transition(_TO_SUBMITTED, ((Outcome.ADOPTED, pair) for pair in pairs))

    @guarded("write ledger")
    def mark_unknown(self, ids: Iterable[str]) -> int:
        """The POST for these items may have taken effect: reconcile before any resend."""
        return self._transition(
            f"UPDATE items SET updated_at = ?, state = '{UNKNOWN}' "
            f"WHERE item_id = ? AND state = '{SUBMITTING}'",
            ((Outcome.UNKNOWN, (item_id,)) for item_id in ids),
        )

    @guarded("write ledger")
    def release(self, ids: Iterable[str]) -> int:
        """Back to pending: the request never took effect. Attempts stay counted."""
        self._claim_floor = None
        return self._transition(
            f"UPDATE items SET updated_at = ?, state = '{PENDING}' "
            f"WHERE item_id = ? AND state IN {_SENDING}",
            ((Outcome.RELEASED, (item_id,)) for item_id in ids),
        )

    @guarded("write ledger")
    def mark_failed(self, rows: Iterable[tuple[str, str, str]]) -> int:
        """(item_id, code, message): a permanent failure of an item that is not final yet."""
        return self._transition(
            f"UPDATE items SET updated_at = ?1, finished_at = ?1, state = '{FAILED}', "
            "code = ?3, message = ?4 "
            f"WHERE item_id = ?2 AND state NOT IN {sql_list(FINAL_STATES)}",
            ((Outcome.FAILED, row) for row in rows),
        )

    @guarded("write ledger")
    def record_states(self, rows: Iterable[JobUpdate]) -> int:
        """Apply described job states. A final state ends its item, which never moves back;
        an update to a state that is not final changes nothing."""
        return self._transition(
            "UPDATE items SET updated_at = ?1, state = ?3, code = ?4, message = ?5, "
            "result = ?6, finished_at = coalesce(?7, ?1) "
            f"WHERE job_id = ?2 AND state IN {sql_list([SUBMITTING, UNKNOWN, SUBMITTED])}",
            _final_updates(rows),
        )

    @guarded("write ledger")
    def recover_interrupted(self) -> int:
        """At startup: the previous process may have sent any item it left submitting."""
        now = self._now()
        with self.atomic():
            changed = self._conn.execute(
                f"UPDATE items SET state = '{UNKNOWN}', updated_at = ? "
                f"WHERE state = '{SUBMITTING}' "
                f"RETURNING item_id, attempts, job_id, '{Outcome.UNKNOWN}', code, message, ?",
                (now, now),
            ).fetchall()
            self._conn.executemany(_INSERT_LOG, changed)
        return len(changed)

    @guarded("write ledger")
    def retry_failed(self, jobs: Collection[str] | None = None) -> int:
        """Failed items (of `jobs`, when given) go back to pending; attempts and history stay."""
        self._claim_floor = None
        return self._write(
            f"UPDATE items SET state = '{PENDING}', updated_at = ?, job_id = NULL, code = NULL, "
            "message = NULL, result = NULL, submitted_at = NULL, finished_at = NULL "
            f"WHERE state = '{FAILED}'{job_clause(jobs)}",
            (self._now(),),
        ).rowcount

    @guarded("write ledger")
    def cancel_pending(self, message: str | None = None) -> int:
        """Pending items (never sent to CI) become cancelled, so that no run submits them."""
        now = self._now()
        with self.atomic():
            changed = self._conn.execute(
                f"UPDATE items SET state = '{CANCELLED}', updated_at = ?1, finished_at = ?1, "
                f"code = NULL, message = ?2 WHERE state = '{PENDING}' "
                f"RETURNING item_id, attempts, job_id, '{Outcome.CANCELLED}', code, message, ?1",
                (now, message),
            ).fetchall()
            self._conn.executemany(_INSERT_LOG, changed)
        return len(changed)


def _final_updates(rows: Iterable[JobUpdate]) -> Iterator[tuple[Outcome, tuple[Any, ...]]]:
    """The final states among `rows`, as parameters for record_states."""
    for update in rows:
        if update.state in FINAL_STATES:
            state = str(update.state)
            finished = None if update.finished_at is None else format_utc(update.finished_at)
            result = encode_json(update.result)
            yield (
                Outcome(state),
                (update.job_id, state, update.code, update.message, result, finished),
            )
