"""Planned items into the ledger: one bulk load into an empty ledger, or id-ordered groups."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final, TypeVar

from orchestrator.exceptions import OutputCollision
from orchestrator.items import Item, ItemRecord
from orchestrator.ledger.errors import translating
from orchestrator.ledger.jobs import JOB_NAME_SQL
from orchestrator.ledger.outputs import OUTPUTS_TABLE, Outputs, SkipRule
from orchestrator.ledger.schema import BULK_INDEXES, ITEM_COLUMNS, foreign_keys_off
from orchestrator.ledger.states import FINAL_STATES, PENDING, SKIPPED, SUCCESS, Outcome, sql_list
from orchestrator.manifest.model import DEFAULT_JOB

__all__ = ["Loader", "Loading", "RefreshChanged"]

_T = TypeVar("_T")

_CHUNK: Final = 1000
# Item ids are hashes, so new rows land on random pages of the item_id index and a commit
# rewrites about one page per row; committing 50 chunks at a time rewrites far fewer.
_CHUNKS_PER_COMMIT: Final = 50
_ROWS_PER_INSERT: Final = 50  # at most 550 parameters: within the 999 of older SQLite builds
_INSERT_ITEM: Final = (
    f"INSERT INTO items ({ITEM_COLUMNS}, state, created_at, updated_at) "
    f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{PENDING}', ?, ?) ON CONFLICT (item_id) DO NOTHING"
)
# With reprocess_changed: an object whose ETag differs from the one its successful job read
# (or had when it was skipped, its output existing) is planned again. Its attempts count and
# history stay.
_UPSERT_CHANGED: Final = (
    _INSERT_ITEM.removesuffix("DO NOTHING")
    + "DO UPDATE SET etag = excluded.etag, size = excluded.size, "
    f"last_modified = excluded.last_modified, state = '{PENDING}', job_id = NULL, code = NULL, "
    "message = NULL, result = NULL, submitted_at = NULL, finished_at = NULL, "
    "updated_at = excluded.updated_at "
    f"WHERE items.state IN {sql_list([SUCCESS, SKIPPED])} AND excluded.etag IS NOT NULL "
    "AND items.etag IS NOT NULL AND items.etag != excluded.etag"
)
# The skip of an item `_UPSERT_CHANGED` is about to put back to pending (same condition), for
# the log: unless an older picjobs logged it as it happened.
_LOG_CHANGED_SKIP: Final = (
    "INSERT INTO attempts_log (item, item_id, attempt, job_id, outcome, code, message, at) "
    f"SELECT rowid, item_id, attempts, NULL, '{Outcome.SKIPPED}', code, message, "
    f"coalesce(finished_at, updated_at) FROM items WHERE item_id = ?1 AND state = '{SKIPPED}' "
    "AND ?2 IS NOT NULL AND etag IS NOT NULL AND etag != ?2 AND NOT EXISTS (SELECT 1 FROM "
    f"attempts_log AS a WHERE a.item = items.rowid AND a.outcome = '{Outcome.SKIPPED}')"
)
# An item planned again by a job of another name (renamed, or a single [job] that became one of
# several) takes that job's name: its id leaves the name out. NULL is the unnamed job, 'default'.
_RELABEL: Final = (
    "UPDATE items SET job = ?2 WHERE item_id = ?1 "
    f"AND coalesce(job, '{DEFAULT_JOB}') != coalesce(?2, '{DEFAULT_JOB}')"
)
# Which jobs a Loader refreshes changed objects of: all (True), none (False), or these labels.
RefreshChanged = bool | frozenset[str | None]


class Loading(Outputs):
    """The planning part of a Ledger."""

    def add_items(
        self,
        items: Iterable[Item],
        *,
        refresh_changed: RefreshChanged = False,
        relabel: bool = False,
    ) -> int:
        """Insert the items not yet in the ledger; return how many were new (see `loading`)."""
        with self.loading(refresh_changed=refresh_changed, relabel=relabel) as loader:
            loader.add(item.record() for item in items)
        return loader.added

    @contextmanager
    def loading(
        self,
        *,
        refresh_changed: RefreshChanged = False,
        relabel: bool = False,
        skip: Sequence[SkipRule] = (),
    ) -> Iterator[Loader]:
        """Add planned items through the Loader this yields; its `added` counts the new ones.

        With `refresh_changed` (True, or the job labels it applies to), a succeeded item whose
        object now has another ETag goes back to pending (and counts as new). With `relabel`,
        an item already in the ledger under another job name takes the name it is planned with.

        Into an empty ledger everything goes in one transaction: rows first, then the indexes,
        each built by one sort. A repeated item is kept once. An OutputCollision rolls all of it
        back. Into a ledger that has items, new ones are committed every 50,000, in id order,
        and a collision rolls back only the uncommitted part: what was committed is valid.

        With `skip` rules, a bulk load inserts an item whose output `temp.outputs` holds already
        skipped (as `Outputs.skip_listed` would skip it): rewriting a million rows afterwards
        costs twice their insert. Into a ledger that has items the rules do nothing.
        """
        self._claim_floor = None
        with translating(self.path, "write ledger"):
            empty = self._conn.execute("SELECT 1 FROM items LIMIT 1").fetchone() is None
        # Foreign keys can only be switched off outside a transaction.
        if not empty or self._depth:
            loader = Loader(self, refresh_changed=refresh_changed, bulk=False, relabel=relabel)
            yield loader
            loader.flush()
            return
        with translating(self.path, "write ledger"), foreign_keys_off(self._conn), self.atomic():
            for name, _create in BULK_INDEXES:
                self._conn.execute(f"DROP INDEX {name}")
            if skip:
                self._conn.execute(OUTPUTS_TABLE)
            self._loaded_skips = {(rule.job, rule.bucket): [0, 0, 0] for rule in skip} or None
            try:
                loader = Loader(self, refresh_changed=refresh_changed, bulk=True, skip=skip)
                yield loader
                self._build_bulk_indexes()
            finally:
                self._loaded_skips = None
            loader.added = self._scalar("SELECT count(*) FROM items")

    def _build_bulk_indexes(self) -> None:
        conn = self._conn
        for name, create in BULK_INDEXES:
            try:
                conn.execute(create)
                continue
            except sqlite3.IntegrityError:
                if name != "items_id":
                    self._raise_bulk_collision()
                    raise
            # The same item planned twice (a key listed twice): keep its first row.
            conn.execute(
                "DELETE FROM items WHERE rowid NOT IN (SELECT min(rowid) FROM items GROUP BY item_id)"
            )
            conn.execute(create)

    def _raise_bulk_collision(self) -> None:
        row = self._conn.execute(
            "SELECT output_bucket, output_key, min(key), max(key), "
            "min(coalesce(job, '{DEFAULT_JOB}')), max(coalesce(job, '{DEFAULT_JOB}')) "
            "FROM items GROUP BY output_bucket, output_key HAVING count(*) > 1 LIMIT 1"
        ).fetchone()
        if row is not None:
            raise OutputCollision(f"{row[0]}/{row[1]}", row[2], row[3], jobs=(row[4], row[5]))

    def _add_group(
        self, group: list[ItemRecord], insert: str | Callable[[str | None], str], relabel: bool
    ) -> int:
        conn = self._conn
        # Item ids are hashes: inserted in id order, each commit walks the id index once
        # instead of touching a random page per row.
        group.sort(key=_record_id)
        statements: dict[str, list[ItemRecord]] = {}
        if isinstance(insert, str):
            statements[insert] = group
        else:  # some jobs refresh changed objects, others do not
            for job, run in itertools.groupby(group, key=_record_job):
                statements.setdefault(insert(job), []).extend(run)
        with self.atomic():
            refreshed = statements.get(_UPSERT_CHANGED)
            if refreshed and self._has_skipped():
                # A skipped item whose input changed goes back to pending: its skip is logged
                # now, as it leaves (see `Outputs.skip_listed`).
                conn.executemany(_LOG_CHANGED_SKIP, [(r[0], r[8]) for r in refreshed])
            before = conn.total_changes
            removed = 0
            now = (self._now(),) * 2
            for sql, records in statements.items():
                for chunk in _chunks(records, _CHUNK):
                    rows = [record + now for record in chunk]
                    try:
                        conn.executemany(sql, rows)
                    except sqlite3.IntegrityError:
                        superseded = self._supersede(chunk)
                        if not superseded:
                            self._raise_collision(chunk)
                            raise
                        removed += superseded
                        conn.executemany(sql, rows)  # the rows inserted already are ignored
            added = conn.total_changes - before - removed
            if relabel:
                conn.executemany(_RELABEL, [(record[0], record[11]) for record in group])
            return added

    def _has_skipped(self) -> bool:
        return bool(
            self._conn.execute(f"SELECT 1 FROM items WHERE state = '{SKIPPED}' LIMIT 1").fetchone()
        )

    def _supersede(self, chunk: list[ItemRecord]) -> int:
        """Remove the rows that items of `chunk` replace: same input, job and output, another
        operation. Their job changed its operation; a row still on its way through CI stays
        (and collides). Returns the change count the removal took, for `added` to leave out."""
        conn = self._conn
        before = conn.total_changes
        for record in chunk:
            conn.execute(
                f"DELETE FROM items WHERE output_bucket = ? AND output_key = ? AND item_id != ? "
                f"AND bucket = ? AND key = ? AND {JOB_NAME_SQL} = coalesce(?, '{DEFAULT_JOB}') "
                f"AND state IN {sql_list([PENDING, *FINAL_STATES])}",
                (record[3], record[5], record[0], record[1], record[2], record[11]),
            )
        return conn.total_changes - before

    def _raise_collision(self, chunk: list[ItemRecord]) -> None:
        seen: dict[tuple[str, str], ItemRecord] = {}
        for record in chunk:
            item_id, key, output = record[0], record[2], (record[3], record[5])
            job = record[11] or DEFAULT_JOB
            row = self._conn.execute(
                f"SELECT item_id, key, coalesce(job, '{DEFAULT_JOB}') FROM items "
                "WHERE output_bucket = ? AND output_key = ?",
                output,
            ).fetchone()
            if row is not None and row[0] != item_id:
                raise _collision(output, (row[1], row[2]), (key, job))
            first = seen.setdefault(output, record)
            if first[0] != item_id:
                raise _collision(output, (first[2], first[11] or DEFAULT_JOB), (key, job))


def _collision(
    output: tuple[str, str], first: tuple[str, str], second: tuple[str, str]
) -> OutputCollision:
    """(key, job) and (key, job) write `output`: keys in order within one job."""
    if first[1] == second[1]:
        first, second = sorted((first, second))
    return OutputCollision("/".join(output), first[0], second[0], jobs=(first[1], second[1]))


class Loader:
    """Hands planned items to the ledger during `Ledger.loading()`."""

    def __init__(
        self,
        ledger: Loading,
        *,
        refresh_changed: RefreshChanged,
        bulk: bool,
        relabel: bool = False,
        skip: Sequence[SkipRule] = (),
    ) -> None:
        self._ledger = ledger
        self._bulk = bulk
        self._relabel = relabel
        self._refresh = refresh_changed
        self._insert: str | Callable[[str | None], str] = self._insert_for
        if isinstance(refresh_changed, bool) or len(refresh_changed) == 0:
            self._insert = _UPSERT_CHANGED if refresh_changed else _INSERT_ITEM
        self._pending: list[ItemRecord] = []
        self._now = ledger._now()
        self._skip = _skipping_select(skip, self._now) if skip else None
        self.added = 0

    def add(self, records: Iterable[ItemRecord]) -> None:
        with translating(self._ledger.path, "write ledger"):
            if self._bulk:
                conn = self._ledger.connection
                for chunk in _chunks(records, _CHUNK):
                    for sql, params in _insert_new(chunk, self._now, self._skip):
                        conn.execute(sql, params)
                return
            self._pending.extend(records)
            while len(self._pending) >= _CHUNK * _CHUNKS_PER_COMMIT:
                group = self._pending[: _CHUNK * _CHUNKS_PER_COMMIT]
                del self._pending[: _CHUNK * _CHUNKS_PER_COMMIT]
                self.added += self._ledger._add_group(group, self._insert, self._relabel)

    def _insert_for(self, job: str | None) -> str:
        """The INSERT for the items of the job labelled `job`."""
        refresh = self._refresh if isinstance(self._refresh, bool) else job in self._refresh
        return _UPSERT_CHANGED if refresh else _INSERT_ITEM

    def flush(self) -> None:
        if self._pending:
            with translating(self._ledger.path, "write ledger"):
                group, self._pending = self._pending, []
                self.added += self._ledger._add_group(group, self._insert, self._relabel)


def _record_id(record: ItemRecord) -> str:
    return record[0]


def _record_job(record: ItemRecord) -> str | None:
    return record[11]


def _chunks(iterable: Iterable[_T], size: int) -> Iterator[list[_T]]:
    iterator = iter(iterable)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _insert_new(
    chunk: list[ItemRecord], now: str, skip: tuple[str, str] | None = None
) -> Iterator[tuple[str, list[Any]]]:
    """INSERTs for `chunk`, 50 rows each, that bind only the columns whose values vary in it.

    Most columns of a load hold one value throughout (buckets, region, often the level, the
    NULLs a CSV leaves), and the sqlite3 module spends about as long binding a parameter as
    SQLite takes to store it: literals for those, and many rows per statement, make a row
    cost a third of an `executemany` of every column. With `skip` (see `_skipping_select`)
    the rows are read from their VALUES joined with the listed outputs.
    """
    columns = list(zip(*chunk, strict=True))
    values: list[str] = []
    varying: list[tuple[Any, ...]] = []
    for column in columns:
        literal = _literal(column[0]) if column.count(column[0]) == len(column) else None
        if literal is None:
            values.append("?")
            varying.append(column)
        else:
            values.append(literal)
    stamp = _literal(now)
    if skip is None:
        row = f"({', '.join(values)}, '{PENDING}', {stamp}, {stamp})"
        head = f"INSERT INTO items ({ITEM_COLUMNS}, state, created_at, updated_at) VALUES "
        tail = ""
    else:
        row = f"({', '.join(values)})"
        head, tail = skip
    rows = list(zip(*varying, strict=True)) if varying else [()] * len(chunk)
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        part = rows[start : start + _ROWS_PER_INSERT]
        sql = head + ", ".join([row] * len(part)) + tail
        yield sql, list(itertools.chain.from_iterable(part))


def _skipping_select(rules: Sequence[SkipRule], now: str) -> tuple[str, str]:
    """The text around the VALUES of an INSERT that skips what `rules` say: an item whose
    output `temp.outputs` holds, per its job's rule, goes in skipped, with the output's ETag
    and time, the rule's code and message, as `Outputs.skip_listed` would write it.

    VALUES columns are `column1`... in ITEM_COLUMNS' order: 4 output_bucket, 6 output_key,
    11 last_modified, 12 job."""
    stamp = _text(now)

    def whose(rule: SkipRule) -> str:
        job = "NULL" if rule.job is None else _text(rule.job)
        return f"v.column12 IS {job} AND v.column4 = {_text(rule.bucket)}"

    def matches(rule: SkipRule) -> str:
        newer = " AND (v.column11 IS NULL OR o.last_modified >= v.column11)" if rule.newer else ""
        return f"({whose(rule)}{newer})"

    def per_rule(field: str) -> str:
        cases = " ".join(f"WHEN {whose(rule)} THEN {_text(getattr(rule, field))}" for rule in rules)
        return f"CASE WHEN o.key IS NULL THEN NULL {cases} END"

    head = (
        f"INSERT INTO items ({ITEM_COLUMNS}, state, code, message, result, finished_at, "
        f"created_at, updated_at) SELECT v.*, CASE WHEN o.key IS NULL THEN '{PENDING}' "
        f"ELSE '{SKIPPED}' END, {per_rule('code')}, {per_rule('message')}, CASE WHEN o.key IS "
        "NULL THEN NULL ELSE json_object('etag', o.etag, 'last_modified', o.last_modified) END, "
        f"CASE WHEN o.key IS NULL THEN NULL ELSE {stamp} END, {stamp}, {stamp} FROM (VALUES "
    )
    tail = (
        ") AS v LEFT JOIN temp.outputs AS o ON o.bucket = v.column4 AND o.key = v.column6 "
        f"AND ({' OR '.join(map(matches, rules))})"
    )
    return head, tail


def _text(value: str) -> str:
    literal = _literal(value)
    assert literal is not None, "names and messages hold no NUL"
    return literal


def _literal(value: object) -> str | None:
    """`value` as an SQL literal, or None where it must stay a bound parameter."""
    if value is None:
        return "NULL"
    if type(value) is int:
        return str(value)
    if type(value) is str and "\x00" not in value:
        return "'" + value.replace("'", "''") + "'"
    return None
