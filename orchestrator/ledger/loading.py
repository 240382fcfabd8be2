"""Planned items into the ledger: one bulk load into an empty ledger, or id-ordered groups."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Final, TypeVar

from orchestrator.exceptions import OutputCollision
from orchestrator.items import Item, ItemRecord
from orchestrator.ledger.errors import translating
from orchestrator.ledger.schema import BULK_INDEXES, ITEM_COLUMNS, foreign_keys_off
from orchestrator.ledger.states import PENDING, SKIPPED, SUCCESS, sql_list
from orchestrator.ledger.store import Store

__all__ = ["Loader", "Loading"]

_T = TypeVar("_T")

_CHUNK: Final = 1000
# Item ids are hashes, so new rows land on random pages of the item_id index and a commit
# rewrites about one page per row; committing 50 chunks at a time rewrites far fewer.
_CHUNKS_PER_COMMIT: Final = 50
_ROWS_PER_INSERT: Final = 50  # at most 550 parameters: within the 999 of older SQLite builds
_INSERT_ITEM: Final = (
    f"INSERT INTO items ({ITEM_COLUMNS}, state, created_at, updated_at) "
    f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{PENDING}', ?, ?) ON CONFLICT (item_id) DO NOTHING"
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


class Loading(Store):
    """The planning part of a Ledger."""

    def add_items(self, items: Iterable[Item], *, refresh_changed: bool = False) -> int:
        """Insert the items not yet in the ledger; return how many were new (see `loading`)."""
        with self.loading(refresh_changed=refresh_changed) as loader:
            loader.add(item.record() for item in items)
        return loader.added

    @contextmanager
    def loading(self, *, refresh_changed: bool = False) -> Iterator[Loader]:
        """Add planned items through the Loader this yields; its `added` counts the new ones.

        With `refresh_changed`, a succeeded item whose object now has another ETag goes back to
        pending (and counts as new).

        Into an empty ledger everything goes in one transaction: rows first, then the indexes,
        each built by one sort. A repeated item is kept once. An OutputCollision rolls all of it
        back. Into a ledger that has items, new ones are committed every 50,000, in id order,
        and a collision rolls back only the uncommitted part: what was committed is valid.
        """
        with translating(self.path, "write ledger"):
            empty = self._conn.execute("SELECT 1 FROM items LIMIT 1").fetchone() is None
        # Foreign keys can only be switched off outside a transaction.
        if not empty or self._depth:
            loader = Loader(self, refresh_changed=refresh_changed, bulk=False)
            yield loader
            loader.flush()
            return
        with translating(self.path, "write ledger"), foreign_keys_off(self._conn), self.atomic():
            for name, _create in BULK_INDEXES:
                self._conn.execute(f"DROP INDEX {name}")
            loader = Loader(self, refresh_changed=refresh_changed, bulk=True)
            yield loader
            self._build_bulk_indexes()
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
            "SELECT output_bucket, output_key, min(key), max(key) FROM items "
            "GROUP BY output_bucket, output_key HAVING count(*) > 1 LIMIT 1"
        ).fetchone()
        if row is not None:
            raise OutputCollision(f"{row[0]}/{row[1]}", row[2], row[3])

    def _add_group(self, group: list[ItemRecord], insert: str) -> int:
        conn = self._conn
        # Item ids are hashes: inserted in id order, each commit walks the id index once
        # instead of touching a random page per row.
        group.sort(key=_record_id)
        with self.atomic():
            before = conn.total_changes
            now = (self._now(),) * 2
            for chunk in _chunks(group, _CHUNK):
                try:
                    conn.executemany(insert, [record + now for record in chunk])
                except sqlite3.IntegrityError:
                    self._raise_collision(chunk)
                    raise
            return conn.total_changes - before

    def _raise_collision(self, chunk: list[ItemRecord]) -> None:
        seen: dict[tuple[str, str], ItemRecord] = {}
        for record in chunk:
            item_id, key, output = record[0], record[2], (record[3], record[5])
            row = self._conn.execute(
                "SELECT item_id, key FROM items WHERE output_bucket = ? AND output_key = ?", output
            ).fetchone()
            if row is not None and row[0] != item_id:
                raise OutputCollision("/".join(output), *sorted((row[1], key)))
            first = seen.setdefault(output, record)
            if first[0] != item_id:
                raise OutputCollision("/".join(output), *sorted((first[2], key)))


class Loader:
    """Hands planned items to the ledger during `Ledger.loading()`."""

    def __init__(self, ledger: Loading, *, refresh_changed: bool, bulk: bool) -> None:
        self._ledger = ledger
        self._bulk = bulk
        self._insert = _UPSERT_CHANGED if refresh_changed else _INSERT_ITEM
        self._pending: list[ItemRecord] = []
        self._now = ledger._now()
        self.added = 0

    def add(self, records: Iterable[ItemRecord]) -> None:
        with translating(self._ledger.path, "write ledger"):
            if self._bulk:
                conn = self._ledger.connection
                for chunk in _chunks(records, _CHUNK):
                    for sql, params in _insert_new(chunk, self._now):
                        conn.execute(sql, params)
                return
            self._pending.extend(records)
            while len(self._pending) >= _CHUNK * _CHUNKS_PER_COMMIT:
                group = self._pending[: _CHUNK * _CHUNKS_PER_COMMIT]
                del self._pending[: _CHUNK * _CHUNKS_PER_COMMIT]
                self.added += self._ledger._add_group(group, self._insert)

    def flush(self) -> None:
        if self._pending:
            with translating(self._ledger.path, "write ledger"):
                group, self._pending = self._pending, []
                self.added += self._ledger._add_group(group, self._insert)


def _record_id(record: ItemRecord) -> str:
    return record[0]


def _chunks(iterable: Iterable[_T], size: int) -> Iterator[list[_T]]:
    iterator = iter(iterable)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _insert_new(chunk: list[ItemRecord], now: str) -> Iterator[tuple[str, list[Any]]]:
    """INSERTs for `chunk`, 50 rows each, that bind only the columns whose values vary in it.

    Most columns of a load hold one value throughout (buckets, region, often the level, the
    NULLs a CSV leaves), and the sqlite3 module spends about as long binding a parameter as
    SQLite takes to store it: literals for those, and many rows per statement, make a row
    cost a third of an `executemany` of every column.
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
    row = f"({', '.join(values)}, '{PENDING}', {stamp}, {stamp})"
    head = f"INSERT INTO items ({ITEM_COLUMNS}, state, created_at, updated_at) VALUES "
    rows = list(zip(*varying, strict=True)) if varying else [()] * len(chunk)
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        part = rows[start : start + _ROWS_PER_INSERT]
        yield head + ", ".join([row] * len(part)), list(itertools.chain.from_iterable(part))


def _literal(value: object) -> str | None:
    """`value` as an SQL literal, or None where it must stay a bound parameter."""
    if value is None:
        return "NULL"
    if type(value) is int:
        return str(value)
    if type(value) is str and "\x00" not in value:
        return "'" + value.replace("'", "''") + "'"
    return None
