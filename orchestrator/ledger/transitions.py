"""An item's way through the states: claims, CI's answers, recovery; each move logged."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
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

__all__ = ["ClaimedItem", "JobUpdate", "Outcomes", "Transitions"]

_INSERT_LOG: Final = (
    "INSERT INTO attempts_log (item, item_id, attempt, job_id, outcome, code, message, at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_SENDING: Final = sql_list([SUBMITTING, UNKNOWN])


@dataclass(frozen=True, slots=True)
class _Move:
    """One kind of transition: the rows it applies to (by `key`, in one of `states`) and the
    columns it sets. The rows of a batch are found by one SELECT, then updated by rowid: SQLite
    3.40 takes about three times as long for an UPDATE ... RETURNING per row, or for an UPDATE
    that finds its row through the partial job_id index itself."""

    key: str  # item_id, job_id or rowid
    states: str  # an SQL condition on state
    columns: tuple[str, ...]
    # A move by rowid also names the job the row must still have: (rowid, job_id) keys.
    with_job: bool = False

    @property
    def find(self) -> str:
        key = f"{self.key}, job_id" if self.with_job else self.key
        return (
            f"SELECT {key}, rowid, item_id, attempts, job_id, code, message FROM items "
            # `+state`: found by the key's index, never by scanning the state index.
            f"WHERE {self.key} IN (SELECT value FROM json_each(?)) AND +state {self.states}"
        )

    @property
    def update(self) -> str:
        assignments = "".join(f", {column} = ?" for column in self.columns)
        return f"UPDATE items SET updated_at = ?{assignments} WHERE rowid = ?"


_TO_SUBMITTED: Final = _Move(
    "item_id", f"IN {_SENDING}", ("state", "job_id", "code", "message", "submitted_at")
)
_UNKNOWN_TO_SUBMITTED: Final = _Move(
    "item_id", f"= '{UNKNOWN}'", ("state", "job_id", "code", "message", "submitted_at")
)
_TO_FAILED: Final = _Move(
    "item_id", f"NOT IN {sql_list(FINAL_STATES)}", ("state", "code", "message", "finished_at")
)
_TO_UNKNOWN: Final = _Move("item_id", f"= '{SUBMITTING}'", ("state",))
_TO_PENDING: Final = _Move("item_id", f"IN {_SENDING}", ("state",))
_TO_FINAL: Final = _Move(
    "job_id",
    f"IN {sql_list([SUBMITTING, UNKNOWN, SUBMITTED])}",
    ("state", "code", "message", "result", "finished_at"),
)
# The same for jobs whose rows the caller read with them (JobUpdate.row): a lookup by rowid
# reads pages near each other, where one by job id reads a random page of its index each.
_TO_FINAL_BY_ROW: Final = _Move("rowid", _TO_FINAL.states, _TO_FINAL.columns, with_job=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimedItem(Item):
    """An item handed to the submitter, with the number of attempts including this one."""

    attempts: int


@dataclass(slots=True)
class Outcomes:
    """CI's answers to claimed items, waiting to be written together (`record_outcomes`)."""

    submitted: list[tuple[str, str]] = field(default_factory=list)  # (item_id, job_id)
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # (item_id, code, message)
    unknown: list[str] = field(default_factory=list)  # may have created a job: reconcile
    released: list[str] = field(default_factory=list)  # never took effect: pending again

    def __len__(self) -> int:
        return len(self.submitted) + len(self.failed) + len(self.unknown) + len(self.released)


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
    row: int | None = None  # the rowid of the job's item, when the caller read it with the job


class Transitions(Store):
    """The submission part of a Ledger."""

    @guarded("write ledger")
    def claim(self, limit: int, jobs: Collection[str] | None = None) -> list[ClaimedItem]:
        """Move up to `limit` pending items, highest level first, to submitting; return them.

        With `jobs`, only items of those jobs (see `ledger.jobs`)."""
        if limit <= 0:
            return []
        with self.atomic():
            return self._claim(limit, jobs, self._now())

    @guarded("write ledger")
    def record_outcomes(
        self, outcomes: Outcomes, claim: int = 0, jobs: Collection[str] | None = None
    ) -> list[ClaimedItem]:
        """Claim up to `claim` more items (as `claim` does) and write the submitter's
        `outcomes`, in one transaction: each commit costs more than the rows it writes. The
        claim comes first, so that items released here are not taken again at once."""
        if not outcomes and claim <= 0:
            return []
        now = self._now()
        log: list[tuple[Any, ...]] = []
        with self.atomic():
            claimed = self._claim(claim, jobs, now) if claim > 0 else []
            self._apply(
                _TO_SUBMITTED, _submitted(Outcome.SUBMITTED, outcomes.submitted, now), now, log
            )
            self._apply(_TO_FAILED, _failed(outcomes.failed, now), now, log)
            self._apply(_TO_UNKNOWN, _unknown(outcomes.unknown), now, log)
            if outcomes.released:
                self._claim_floor = None
                self._apply(_TO_PENDING, _released(outcomes.released), now, log)
            self._conn.executemany(_INSERT_LOG, log)
        return claimed

    def _claim(self, limit: int, jobs: Collection[str] | None, now: str) -> list[ClaimedItem]:
        """`claim` within the caller's transaction."""
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

    def _transition(self, move: _Move, rows: Iterable[tuple[Outcome, Any, tuple[Any, ...]]]) -> int:
        """Apply `move` to each (outcome, key, values), and log an attempt for every row it
        changed."""
        now = self._now()
        log: list[tuple[Any, ...]] = []
        with self.atomic():
            self._apply(move, rows, now, log)
            self._conn.executemany(_INSERT_LOG, log)
        return len(log)

    def _apply(
        self,
        move: _Move,
        rows: Iterable[tuple[Outcome, Any, tuple[Any, ...]]],
        now: str,
        log: list[tuple[Any, ...]],
    ) -> None:
        """`_transition` within the caller's transaction: the attempts to log go to `log`.
        `values` are the new values of `move.columns`; the log shows the row as updated. A row
        moves at most once (no move leads back into the states it starts from)."""
        rows = list(rows)
        if not rows:
            return
        found: dict[Any, list[Any]] = {}
        if move.with_job:
            keys = [key[0] for _, key, _ in rows]
            for row in self._conn.execute(move.find, (json.dumps(keys),)):
                found.setdefault((row[0], row[1]), []).append(row[2:])
        else:
            keys = [key for _, key, _ in rows]
            for row in self._conn.execute(move.find, (json.dumps(keys),)):
                found.setdefault(row[0], []).append(row[1:])
        columns = move.columns
        logged = [columns.index(c) if c in columns else -1 for c in ("job_id", "code", "message")]
        updates: list[tuple[Any, ...]] = []
        for outcome, key, values in rows:
            for rowid, item_id, attempt, *old in found.pop(key, ()):
                updates.append((now, *values, rowid))
                job_id, code, message = (
                    old[n] if at < 0 else values[at] for n, at in enumerate(logged)
                )
                log.append((rowid, item_id, attempt, job_id, outcome, code, message, now))
        self._conn.executemany(move.update, updates)

    @guarded("write ledger")
    def mark_submitted(self, pairs: Iterable[tuple[str, str]]) -> int:
        """(item_id, job_id): CI accepted the job."""
        now = self._now()
        return self._transition(_TO_SUBMITTED, _submitted(Outcome.SUBMITTED, pairs, now))

    @guarded("write ledger")
    def adopt(self, pairs: Iterable[tuple[str, str]]) -> int:
        """(item_id, job_id): reconciliation found the job of an unknown or submitting item."""
        now = self._now()
        return self._transition(_TO_SUBMITTED, _submitted(Outcome.ADOPTED, pairs, now))

    @guarded("write ledger")
    def adopt_unknown(self, pairs: Iterable[tuple[str, str]]) -> int:
        """As `adopt`, for items that are still unknown: one released or claimed again since
        its lookup began is left as it is."""
        now = self._now()
        return self._transition(_UNKNOWN_TO_SUBMITTED, _submitted(Outcome.ADOPTED, pairs, now))

    @guarded("write ledger")
    def mark_unknown(self, ids: Iterable[str]) -> int:
        """The POST for these items may have taken effect: reconcile before any resend."""
        return self._transition(_TO_UNKNOWN, _unknown(ids))

    @guarded("write ledger")
    def release(self, ids: Iterable[str]) -> int:
        """Back to pending: the request never took effect. Attempts stay counted."""
        self._claim_floor = None
        return self._transition(_TO_PENDING, _released(ids))

    @guarded("write ledger")
    def mark_failed(self, rows: Iterable[tuple[str, str, str]]) -> int:
        """(item_id, code, message): a permanent failure of an item that is not final yet."""
        return self._transition(_TO_FAILED, _failed(rows, self._now()))

    @guarded("write ledger")
    def record_states(self, rows: Iterable[JobUpdate]) -> int:
        """Apply described job states. A final state ends its item, which never moves back;
        an update to a state that is not final changes nothing. An update with its `row` is
        found by it, and applies only while that row still has the update's job."""
        now = self._now()
        by_row: list[tuple[Outcome, Any, tuple[Any, ...]]] = []
        by_job: list[tuple[Outcome, Any, tuple[Any, ...]]] = []
        for row, outcome, job_id, values in _final_updates(rows, now):
            if row is None:
                by_job.append((outcome, job_id, values))
            else:
                by_row.append((outcome, (row, job_id), values))
        log: list[tuple[Any, ...]] = []
        with self.atomic():
            self._apply(_TO_FINAL_BY_ROW, by_row, now, log)
            self._apply(_TO_FINAL, by_job, now, log)
            self._conn.executemany(_INSERT_LOG, log)
        return len(log)

    @guarded("write ledger")
    def recover_interrupted(self) -> int:
        """At startup: the previous process may have sent any item it left submitting."""
        now = self._now()
        with self.atomic():
            changed = self._conn.execute(
                f"UPDATE items SET state = '{UNKNOWN}', updated_at = ? "
                f"WHERE state = '{SUBMITTING}' "
                f"RETURNING rowid, item_id, attempts, job_id, '{Outcome.UNKNOWN}', code, message, ?",
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
                f"RETURNING rowid, item_id, attempts, job_id, '{Outcome.CANCELLED}', code, message, "
                "?1",
                (now, message),
            ).fetchall()
            self._conn.executemany(_INSERT_LOG, changed)
        return len(changed)


# The rows of each move: (outcome, key, new values of the move's columns).
_Rows = Iterator[tuple[Outcome, Any, tuple[Any, ...]]]


def _submitted(outcome: Outcome, pairs: Iterable[tuple[str, str]], now: str) -> _Rows:
    return ((outcome, item_id, (SUBMITTED, job_id, None, None, now)) for item_id, job_id in pairs)


def _failed(rows: Iterable[tuple[str, str, str]], now: str) -> _Rows:
    return ((Outcome.FAILED, item_id, (FAILED, code, msg, now)) for item_id, code, msg in rows)


def _unknown(ids: Iterable[str]) -> _Rows:
    return ((Outcome.UNKNOWN, item_id, (UNKNOWN,)) for item_id in ids)


def _released(ids: Iterable[str]) -> _Rows:
    return ((Outcome.RELEASED, item_id, (PENDING,)) for item_id in ids)


def _final_updates(
    rows: Iterable[JobUpdate], now: str
) -> Iterator[tuple[int | None, Outcome, str, tuple[Any, ...]]]:
    """The final states among `rows`: (row, outcome, job id, values of the final move)."""
    for update in rows:
        if update.state in FINAL_STATES:
            state = str(update.state)
            finished = now if update.finished_at is None else format_utc(update.finished_at)
            result = encode_json(update.result)
            values = (state, update.code, update.message, result, finished)
            yield update.row, Outcome(state), update.job_id, values
