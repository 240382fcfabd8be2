"""Planned items into the ledger: bulk loads, later additions, collisions."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from orchestrator.exceptions import OutputCollision
from orchestrator.items import Item
from orchestrator.ledger import Ledger
from tests.ledger.support import Clock, item, items, submit


def test_a_bulk_load_keeps_an_item_listed_twice_once_in_first_seen_order(ledger: Ledger) -> None:
    assert ledger.add_items([item(2), item(1), item(2, level=1), item(0)]) == 3
    rows = ledger.connection.execute("SELECT item_id, job_level FROM items ORDER BY rowid")
    assert rows.fetchall() == [("id-000002", 0), ("id-000001", 0), ("id-000000", 0)]
    names = {row[0] for row in ledger.connection.execute("SELECT name FROM sqlite_master")}
    assert {"items_id", "items_output", "items_state_level"} <= names
    assert ledger.connection.execute("PRAGMA foreign_keys").fetchone()[0] == 1


@pytest.mark.parametrize("count", [1, 3])
def test_a_bulk_load_stores_every_value_exactly_whatever_it_contains(
    ledger: Ledger, count: int
) -> None:
    odd = Item(
        item_id="id-'; DROP TABLE items; --",
        bucket="src-1250000000",
        key="it's/a \x00 key/猫'.jpg",
        output_bucket="dst-1250000000",
        output_region="ap-guangzhou",
        output_key="out/''.webp",
        job_level=2,
        user_data="{'a': \"b\"}",
        etag='"e\'"',
        size=2**62,
        last_modified="2024-05-01T10:00:00Z",
    )
    batch = [odd] + [item(n) for n in range(count - 1)]
    assert ledger.add_items(batch) == count
    stored = {row.item_id: row for row in ledger.iter_items()}
    row = stored[odd.item_id]
    assert row.record() == odd.record()
    assert stored.keys() == {b.item_id for b in batch}


def test_a_bulk_load_of_uneven_chunks_stores_every_row_as_given(ledger: Ledger) -> None:
    batch = [
        Item(f"id-{n:06d}", "src-1250000000", f"in/{n}.jpg", "dst-1250000000", "ap-guangzhou",
             f"out/{n}.webp", n % 3, None if n % 7 else f"u{n}", None, n if n % 2 else None)
        for n in range(1234)
    ]  # fmt: skip
    assert ledger.add_items(batch) == 1234
    assert [row.record() for row in ledger.iter_items()] == [i.record() for i in batch]


def test_a_failed_bulk_load_leaves_the_empty_ledger_with_all_its_indexes(ledger: Ledger) -> None:
    with pytest.raises(OutputCollision):
        ledger.add_items([item(1), item(2, output="out/000001.webp")])
    names = {row[0] for row in ledger.connection.execute("SELECT name FROM sqlite_master")}
    assert {"items_id", "items_output", "items_state_level"} <= names
    assert ledger.total() == 0
    assert ledger.add_items(items(2)) == 2


def test_adding_items_returns_the_number_of_new_rows(ledger: Ledger) -> None:
    assert ledger.add_items(items(5)) == 5
    assert ledger.add_items(items(5, start=3)) == 3
    assert ledger.total() == 8


def test_re_adding_the_same_items_inserts_nothing(ledger: Ledger) -> None:
    ledger.add_items(items(10))
    submit(ledger, 2)
    assert ledger.add_items(items(10)) == 0
    assert ledger.counts()["pending"] == 8
    assert ledger.counts()["submitted"] == 2


def test_two_inputs_with_one_output_in_one_call_are_refused_naming_both_keys(
    ledger: Ledger,
) -> None:
    batch = [*items(1200), item(5000, output="out/000100.webp")]
    with pytest.raises(OutputCollision) as caught:
        ledger.add_items(batch)
    assert (caught.value.first_key, caught.value.second_key) == ("in/000100.jpg", "in/005000.jpg")
    assert caught.value.output == "dst-1250000000/out/000100.webp"
    assert ledger.total() == 0


def test_an_input_whose_output_is_already_in_the_ledger_is_refused_naming_both_keys(
    ledger: Ledger,
) -> None:
    ledger.add_items(items(3))
    with pytest.raises(OutputCollision) as caught:
        ledger.add_items([item(3), item(7, output="out/000001.webp"), item(4)])
    assert (caught.value.first_key, caught.value.second_key) == ("in/000001.jpg", "in/000007.jpg")
    assert ledger.total() == 3


def test_timestamps_are_utc_iso_8601_with_a_z(ledger: Ledger, clock: Clock) -> None:
    clock.now = datetime(2024, 5, 1, 18, 30, 15, 250000, tzinfo=timezone(timedelta(hours=8)))
    ledger.add_items(items(1))
    (row,) = ledger.iter_items()
    assert row.created_at == row.updated_at == "2024-05-01T10:30:15.250Z"


def test_a_hundred_thousand_items_round_trip(ledger: Ledger) -> None:
    assert ledger.add_items(items(100_000)) == 100_000
    assert ledger.add_items(items(100_000)) == 0
    assert ledger.total() == ledger.pending_count() == 100_000
    count, last = 0, ""
    for row in ledger.iter_items():
        count, last = count + 1, row.key
    assert (count, last) == (100_000, "in/099999.jpg")
    assert [c.item_id for c in ledger.claim(2)] == ["id-000000", "id-000001"]


def _of_job(n: int, job: str | None, etag: str, output: str | None = None) -> Item:
    base = item(n, output=output)
    return Item(*base.record()[:8], etag, base.size, None, job)


def test_changed_objects_are_planned_again_only_for_the_jobs_that_ask(ledger: Ledger) -> None:
    ledger.add_items([_of_job(1, "a", "e1"), _of_job(2, "b", "e1", "other/2.webp")])
    ledger.add_items([_of_job(0, None, "e0", "seed/0.webp")])  # a second load: not the bulk path
    ledger.connection.execute("UPDATE items SET state = 'success'")
    changed = [_of_job(1, "a", "e2"), _of_job(2, "b", "e2", "other/2.webp")]
    assert ledger.add_items(changed, refresh_changed=frozenset({"a"})) == 1
    states = ledger.connection.execute("SELECT job, state FROM items ORDER BY job").fetchall()
    assert states == [(None, "success"), ("a", "pending"), ("b", "success")]


def test_an_item_planned_under_another_job_name_takes_it_when_asked(ledger: Ledger) -> None:
    ledger.add_items([_of_job(1, None, "e1"), _of_job(2, "old", "e1", "x/2.webp")])
    again = [_of_job(1, "thumb", "e1"), _of_job(2, "thumb", "e1", "x/2.webp")]
    assert ledger.add_items(again) == 0
    assert {row[0] for row in ledger.connection.execute("SELECT job FROM items")} == {None, "old"}
    assert ledger.add_items(again, relabel=True) == 0
    assert {row[0] for row in ledger.connection.execute("SELECT job FROM items")} == {"thumb"}


def test_a_new_operation_replaces_the_final_row_of_the_same_input_job_and_output(
    ledger: Ledger,
) -> None:
    ledger.add_items([_of_job(1, "a", "e1"), _of_job(2, "a", "e1")])
    ledger.connection.execute("UPDATE items SET state = 'success'")
    replacing = dataclasses.replace(_of_job(1, "a", "e1"), item_id="id-new")
    assert ledger.add_items([replacing]) == 1
    rows = ledger.connection.execute("SELECT item_id, state FROM items ORDER BY item_id")
    assert rows.fetchall() == [("id-000002", "success"), ("id-new", "pending")]
    other_job = dataclasses.replace(_of_job(2, "b", "e1"), item_id="id-b")
    with pytest.raises(OutputCollision, match=r"\(job a\) and 'in/000002.jpg' \(job b\)"):
        ledger.add_items([other_job])
