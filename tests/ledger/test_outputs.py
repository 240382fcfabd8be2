"""Existing outputs (skip_existing): listed into a temporary table, compared with pending items."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

from orchestrator.ledger import ItemRow, Ledger, SkipRule, State
from orchestrator.ledger.schema import MIGRATIONS
from tests.ledger.support import history, item, items, state_of, submit

OUT = "dst-1250000000"


def _list(ledger: Ledger, *numbers: int, at: str = "2024-05-01T10:00:00Z") -> None:
    ledger.clear_outputs(OUT, "out/")
    ledger.add_outputs(OUT, ((f"out/{n:06d}.webp", f"etag-{n}", at) for n in numbers))


def _skip(ledger: Ledger, *, newer: bool = False, job: str | None = None) -> int:
    return ledger.skip_listed(OUT, job, newer=newer, code="OutputExists", message="exists")


def _rows(ledger: Ledger, count: int) -> tuple[list[str], dict[str, ItemRow]]:
    """The states of id-000000 .. id-{count - 1}, and every row by item id."""
    rows = {row.item_id: row for row in ledger.iter_items()}
    return [str(rows[f"id-{n:06d}"].state) for n in range(count)], rows


def test_only_pending_items_whose_output_was_listed_are_skipped_with_its_etag_and_time(
    ledger: Ledger,
) -> None:
    ledger.add_items(items(4))
    submit(ledger, 1)  # id-000000 is submitted: never a candidate
    _list(ledger, 0, 1, 2, 99)

    assert _skip(ledger) == 2

    states, rows = _rows(ledger, 4)
    assert states == [
        "submitted", "skipped", "skipped", "pending",
    ]  # fmt: skip
    skipped = rows["id-000001"]
    assert (skipped.code, skipped.message, skipped.job_id) == ("OutputExists", "exists", None)
    assert skipped.result == {"etag": "etag-1", "last_modified": "2024-05-01T10:00:00Z"}
    assert skipped.finished_at is not None
    assert history(ledger, "id-000001") == []  # the row is the record while it stays skipped
    assert ledger.counts()["skipped"] == 2


def test_newer_skips_only_outputs_at_or_after_the_input_and_inputs_of_unknown_time(
    ledger: Ledger,
) -> None:
    times = ["2024-05-01T09:00:00Z", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z", None]
    ledger.add_items(dataclasses.replace(item(n), last_modified=t) for n, t in enumerate(times))
    _list(ledger, 0, 1, 2, 3)

    assert ledger.count_listed(OUT, None, newer=True) == (3, 1)
    assert _skip(ledger, newer=True) == 3
    assert state_of(ledger, "id-000002") == "pending"  # its output is older than the input


def test_an_item_skipped_before_and_pending_again_is_never_skipped_again(ledger: Ledger) -> None:
    ledger.add_items(items(2))
    _list(ledger, 0, 1)
    _skip(ledger)

    assert ledger.unskip(None) == 2
    assert ledger.counts()["pending"] == 2
    assert history(ledger, "id-000000") == [
        (0, None, "skipped", "OutputExists"), (0, None, "released", None),
    ]  # fmt: skip
    assert (_skip(ledger), ledger.count_listed(OUT, None, newer=False)) == (0, (0, 0))


def test_only_the_items_of_the_job_and_its_output_bucket_are_compared(ledger: Ledger) -> None:
    ledger.add_items(items(2))
    _list(ledger, 0, 1)

    assert ledger.skip_listed("other-1250000000", None, newer=False, code="c", message="m") == 0
    assert _skip(ledger, job="thumbs") == 0
    assert _skip(ledger) == 2


def test_reprocess_changed_puts_a_skipped_item_whose_input_changed_back_to_pending(
    ledger: Ledger,
) -> None:
    ledger.add_items(
        [dataclasses.replace(item(0), etag="a"), dataclasses.replace(item(1), etag="b")]
    )
    _list(ledger, 0, 1)
    _skip(ledger)

    changed = [dataclasses.replace(item(0), etag="a2"), dataclasses.replace(item(1), etag="b")]
    assert ledger.add_items(changed, refresh_changed=True) == 1
    assert (state_of(ledger, "id-000000"), state_of(ledger, "id-000001")) == ("pending", "skipped")
    # Its skip is logged as it leaves the state, and so it is not skipped again.
    assert history(ledger, "id-000000") == [(0, None, "skipped", "OutputExists")]
    assert _skip(ledger) == 0


def test_a_dry_run_leaves_out_what_the_real_ledger_finished_but_keeps_the_skipped_with_force(
    tmp_path: Path,
) -> None:
    with Ledger.open(tmp_path / "real.sqlite") as real:
        real.add_items([*items(4), dataclasses.replace(item(4), etag="a")])
        submit(real, 1)  # id-000000 submitted: not final
        real.connection.execute("UPDATE items SET state = 'success' WHERE item_id = 'id-000001'")
        _list(real, 2, 4)
        _skip(real)
        # id-000004's input changed since it was skipped: pending again, with reprocess_changed.
        real.add_items([dataclasses.replace(item(4), etag="a2")], refresh_changed=True)
    with Ledger.open(tmp_path / "plan.sqlite") as plan:
        plan.add_items(items(5))  # id-000004: skipped before, its input changed since
        _list(plan, 0, 1, 2, 3, 4)
        without = plan.count_listed(OUT, None, newer=False, unless_final_in=real.path)
        forced = plan.count_listed(
            OUT, None, newer=False, unless_final_in=real.path, keep=State.SKIPPED
        )
    assert (without, forced) == ((2, 2), (4, 4))  # (to skip, of those inputs of unknown time)


def test_a_dry_run_reads_what_a_real_ledger_of_schema_3_skipped_before(tmp_path: Path) -> None:
    real = tmp_path / "real.sqlite"
    with sqlite3.connect(real) as conn:
        for migration in MIGRATIONS[:3]:
            for statement in migration.statements:
                conn.execute(statement)
        conn.execute("PRAGMA user_version = 3")
        for n in (1, 0):  # rowids 1 and 2, the other way round from the plan's
            conn.execute(
                "INSERT INTO items (item_id, bucket, key, output_bucket, output_region, "
                "output_key, job_level, state, created_at, updated_at) VALUES (?, 'src', ?, ?, "
                "'ap-guangzhou', ?, 0, 'pending', 't', 't')",
                (f"id-{n:06d}", f"in/{n:06d}.jpg", OUT, f"out/{n:06d}.webp"),
            )
        conn.execute(
            "INSERT INTO attempts_log (item_id, attempt, outcome, at) "
            "VALUES ('id-000000', 0, 'skipped', 't')"
        )
    conn.close()
    with Ledger.open(tmp_path / "plan.sqlite") as plan:
        plan.add_items(items(2))
        _list(plan, 0, 1)
        assert plan.count_listed(OUT, None, newer=False, unless_final_in=real) == (1, 1)
        assert plan.count_listed(OUT, None, newer=False) == (2, 2)
    with sqlite3.connect(real) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3  # only read


def _rule(*, newer: bool = False, job: str | None = None) -> SkipRule:
    return SkipRule(job, OUT, newer, "OutputExists", "exists")


def test_a_bulk_load_inserts_skipped_the_items_whose_output_is_listed_and_skip_listed_the_rest(
    ledger: Ledger,
) -> None:
    with ledger.loading(skip=[_rule()]) as loader:
        _list(ledger, 1, 2)
        loader.add(record.record() for record in items(2))  # id-000001 listed already
        _list_more(ledger, 3)  # listed after id-000003 was inserted: skip_listed's part
        loader.add(record.record() for record in items(2, start=2))
        assert _skip(ledger) == 3

    states, rows = _rows(ledger, 4)
    assert states == [
        "pending", "skipped", "skipped", "skipped",
    ]  # fmt: skip
    loaded = rows["id-000001"]
    assert (loaded.code, loaded.message, loaded.finished_at is not None) == (
        "OutputExists", "exists", True,
    )  # fmt: skip
    assert loaded.result == {"etag": "etag-1", "last_modified": "2024-05-01T10:00:00Z"}
    assert ledger.counts()["skipped"] == 3


def test_a_bulk_load_skips_only_per_its_rules_job_and_time(ledger: Ledger) -> None:
    times = [None, "2024-05-01T09:00:00Z", "2024-05-01T11:00:00Z"]
    planned = [dataclasses.replace(item(n), last_modified=t) for n, t in enumerate(times)]
    with ledger.loading(skip=[_rule(newer=True), _rule(job="thumbs")]) as loader:
        _list(ledger, 0, 1, 2)
        loader.add(record.record() for record in planned)
        assert ledger.count_loaded_skips(OUT, None) == (2, 1)
        assert _skip(ledger, newer=True) == 2

    assert [state_of(ledger, f"id-{n:06d}") for n in range(3)] == ["skipped", "skipped", "pending"]


def _list_more(ledger: Ledger, *numbers: int, at: str = "2024-05-01T10:00:00Z") -> None:
    ledger.add_outputs(OUT, ((f"out/{n:06d}.webp", f"etag-{n}", at) for n in numbers))


def test_a_bulk_load_keeps_an_item_planned_twice_once_and_logs_its_skip_once_it_is_forced(
    ledger: Ledger,
) -> None:
    with ledger.loading(skip=[_rule()]) as loader:
        _list(ledger, 0, 1)
        # id-000001 planned twice (a key listed twice in a CSV): one item, one skip logged.
        loader.add(record.record() for record in [item(0), item(1), item(1), item(2)])

    assert ledger.counts()["skipped"] == 2
    assert ledger.unskip(None) == 2
    assert [history(ledger, f"id-{n:06d}") for n in range(3)] == [
        [(0, None, "skipped", "OutputExists"), (0, None, "released", None)],
        [(0, None, "skipped", "OutputExists"), (0, None, "released", None)],
        [],
    ]
    assert ledger.integrity_check() == "ok"


def test_skip_listed_counts_a_bulk_loads_skips_once(ledger: Ledger) -> None:
    with ledger.loading(skip=[_rule()]) as loader:
        _list(ledger, 0, 1)
        loader.add(record.record() for record in items(3))
        assert _skip(ledger) == 2
        assert _skip(ledger) == 0

    assert ledger.counts()["skipped"] == 2


def test_skip_listed_after_a_bulk_load_skips_what_was_listed_after_it(ledger: Ledger) -> None:
    with ledger.loading(skip=[_rule()]) as loader:
        _list(ledger, 0)
        loader.add(record.record() for record in items(2))
    _list_more(ledger, 1)  # listed after the load

    assert _skip(ledger) == 1
    assert [state_of(ledger, f"id-{n:06d}") for n in range(2)] == ["skipped", "skipped"]


def test_an_item_skipped_by_an_older_picjobs_keeps_its_one_logged_skip_when_it_leaves(
    ledger: Ledger,
) -> None:
    ledger.add_items(items(1))
    _list(ledger, 0)
    _skip(ledger)
    # An older picjobs logged a skip as it happened.
    ledger.connection.execute(
        "INSERT INTO attempts_log (item, item_id, attempt, outcome, code, at) SELECT rowid, "
        "item_id, 0, 'skipped', 'OutputExists', 't' FROM items WHERE item_id = 'id-000000'"
    )

    ledger.unskip(None)

    assert [row[2] for row in history(ledger, "id-000000")] == ["skipped", "released"]


def test_a_changed_input_skipped_by_an_older_picjobs_keeps_its_one_logged_skip(
    ledger: Ledger,
) -> None:
    ledger.add_items([dataclasses.replace(item(0), etag="a")])
    _list(ledger, 0)
    _skip(ledger)
    ledger.connection.execute(  # an older picjobs logged a skip as it happened
        "INSERT INTO attempts_log (item, item_id, attempt, outcome, code, at) SELECT rowid, "
        "item_id, 0, 'skipped', 'OutputExists', 't' FROM items WHERE item_id = 'id-000000'"
    )

    ledger.add_items([dataclasses.replace(item(0), etag="a2")], refresh_changed=True)

    assert state_of(ledger, "id-000000") == "pending"
    assert [row[2] for row in history(ledger, "id-000000")] == ["skipped"]
    assert _skip(ledger) == 0
