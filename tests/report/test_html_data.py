"""The report's figures, from ledgers written through the Ledger API under a controlled clock."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from orchestrator.engine.tracker import ledger_state
from orchestrator.htmlreport import render_html
from orchestrator.htmlreport.data import collect
from orchestrator.items import Item
from orchestrator.ledger import JobUpdate, Ledger

from .page_parts import Page, headline
from .support import START, Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(tmp_path: Path, clock: Clock) -> Iterator[Ledger]:
    with Ledger.open(tmp_path / "l.sqlite", clock=clock) as db:
        yield db


def _items(n: int, prefix: str = "in") -> list[Item]:
    return [
        Item(
            f"{prefix}-{i:05d}",
            "src-1250000000",
            f"{prefix}/{i}.jpg",
            "dst-1250000000",
            "ap-guangzhou",
            f"out/{prefix}/{i}.jpg",
            i % 3,
        )
        for i in range(n)
    ]


def _submit_all(ledger: Ledger) -> list[str]:
    claimed = ledger.claim(100_000)
    ledger.mark_submitted([(c.item_id, f"job-{c.item_id}") for c in claimed])
    return [f"job-{c.item_id}" for c in claimed]


def _finish(ledger: Ledger, job_id: str, clock: Clock, state: str = "Success",
            code: str | None = None, message: str | None = None) -> None:  # fmt: skip
    update = JobUpdate(job_id, ledger_state(state), code, message, finished_at=clock.now)
    ledger.record_states([update])


def test_percentiles_of_submission_to_final_state_are_marked_where_the_items_are(
    ledger: Ledger, clock: Clock
) -> None:
    ledger.add_items(_items(200))
    jobs = _submit_all(ledger)
    for n, job in enumerate(jobs, start=1):  # item n takes n/2 seconds
        clock.now = START + timedelta(seconds=n / 2)
        _finish(ledger, job, clock)

    latency = collect(ledger, "t").latency

    assert latency.count == 200
    assert sum(latency.counts) == 200
    assert latency.p50 == pytest.approx(50, rel=0.03)
    assert latency.p90 == pytest.approx(90, rel=0.03)
    assert latency.p99 == pytest.approx(99, rel=0.03)
    assert latency.edges[0] <= 0.5 < 100 <= latency.edges[-1]


def test_each_run_bar_counts_what_reached_a_final_state_during_that_run(
    ledger: Ledger, clock: Clock
) -> None:
    ledger.add_items(_items(7))
    first = ledger.start_run(1, "host", {})
    jobs = _submit_all(ledger)
    clock.advance(30)
    for job in jobs[:5]:
        _finish(ledger, job, clock)
    for job in jobs[5:]:
        _finish(ledger, job, clock, "Failed", "InvalidArgument", "bad rule")
    clock.advance(5)
    ledger.finish_run(first, 1, ledger.counts())
    clock.advance(86400)
    second = ledger.start_run(1, "host", {})
    ledger.retry_failed()
    retried = _submit_all(ledger)
    clock.advance(2)
    _finish(ledger, retried[0], clock)
    _finish(ledger, retried[1], clock, "Failed", "InvalidArgument", "bad rule")
    ledger.meta_set(f"throttled:{second}", '{"1796090000": 3, "1796090001": 4}')
    clock.advance(1)
    ledger.finish_run(second, 1, ledger.counts())

    runs = collect(ledger, "t", now=clock.now).runs

    assert [(r.run_id, r.success, r.failed, r.exit_code) for r in runs] == [
        (first, 5, 2, 1),
        (second, 1, 1, 1),
    ]
    assert [r.seconds for r in runs] == [35.0, 3.0]
    assert [r.throttled for r in runs] == [None, 7]


def test_the_last_runs_timeline_bins_submissions_and_final_states_from_its_start(
    ledger: Ledger, clock: Clock
) -> None:
    ledger.add_items(_items(30))
    run = ledger.start_run(1, "host", {})
    clock.advance(5)
    jobs = _submit_all(ledger)
    for i, job in enumerate(jobs):  # one final state every 20 s, from 20 s to 600 s
        clock.advance(20)
        _finish(ledger, job, clock, "Failed" if i % 10 == 0 else "Success", "X", "y")
    ledger.finish_run(run, 1, ledger.counts())
    ledger.meta_set(f"throttled:{run}", f'{{"{int(START.timestamp()) + 7}": 4}}')

    timeline = collect(ledger, "t", now=clock.now).timeline

    assert timeline is not None
    assert timeline.bin_seconds == 10  # 605 s in at most 90 bins
    assert len(timeline.success) == 61
    assert timeline.submitted[0] == 30
    assert sum(timeline.submitted) == 30
    assert (sum(timeline.success), sum(timeline.failed)) == (27, 3)
    assert timeline.success[2] == 0 and timeline.failed[2] == 1  # the first, at 25 s
    assert timeline.success[4] == 1  # the second, at 45 s
    assert timeline.throttled is not None
    assert timeline.throttled[0] == 4 and sum(timeline.throttled) == 4


def test_failures_are_grouped_by_code_and_message_largest_first_with_ten_examples_at_most(
    ledger: Ledger, clock: Clock
) -> None:
    ledger.add_items(_items(30))
    jobs = _submit_all(ledger)
    groups = [("A", "m1")] * 12 + [("B", "m2")] * 3 + [("A", "m3")] * 15
    for job, (code, message) in zip(jobs, groups, strict=True):
        _finish(ledger, job, clock, "Failed", code, message)

    data = collect(ledger, "t")
    capped = collect(ledger, "t", max_groups=2)

    assert [(g.code, g.message, g.count, len(g.examples)) for g in data.failures] == [
        ("A", "m3", 15, 10),
        ("A", "m1", 12, 10),
        ("B", "m2", 3, 3),
    ]
    b_keys = {
        f"in/{int(job[-5:])}.jpg"
        for job, group in zip(jobs, groups, strict=True)
        if group[0] == "B"
    }
    assert set(data.failures[2].examples) == b_keys
    assert data.failure_groups == 3
    assert (len(capped.failures), capped.failure_groups) == (2, 3)


def test_counts_per_job_level_are_split_by_state(ledger: Ledger, clock: Clock) -> None:
    ledger.add_items(_items(9))
    _submit_all(ledger)
    _finish(ledger, "job-in-00000", clock)  # level 0
    _finish(ledger, "job-in-00001", clock, "Failed", "X", "y")  # level 1

    levels = collect(ledger, "t").levels

    assert levels == {
        0: {"success": 1, "submitted": 2},
        1: {"failed": 1, "submitted": 2},
        2: {"submitted": 3},
    }


def test_counts_per_job_are_split_by_state_and_charted_when_there_are_several(
    ledger: Ledger, clock: Clock
) -> None:
    thumbs = [dataclasses.replace(item, job="thumb") for item in _items(3, "t")]
    medium = [dataclasses.replace(item, job="medium") for item in _items(2, "m")]
    ledger.add_items([*thumbs, *medium])
    _submit_all(ledger)
    _finish(ledger, "job-t-00000", clock)
    _finish(ledger, "job-m-00001", clock, "Failed", "X", "y")

    data = collect(ledger, "t")
    page = render_html(ledger, name="t", manifest="m.toml")

    assert data.jobs == {
        "medium": {"failed": 1, "submitted": 1},
        "thumb": {"success": 1, "submitted": 2},
    }
    assert "Items per job" in page


def test_a_single_unnamed_job_gets_no_per_job_chart(ledger: Ledger) -> None:
    ledger.add_items(_items(2))

    assert collect(ledger, "t").jobs == {"default": {"pending": 2}}
    assert "Items per job" not in render_html(ledger, name="t", manifest="m.toml")


def test_a_ledger_never_run_renders_with_no_run_and_empty_charts(ledger: Ledger) -> None:
    ledger.add_items(_items(4))

    page = Page(render_html(ledger, name="fresh <night>", manifest="m.toml"))

    assert headline(page) == {"total": 4, "success": 0, "failed": 0, "cancelled": 0,
                              "in-flight": 0, "pending": 4}  # fmt: skip
    assert page.by_id["last-run"] == "No run has been recorded yet."
    assert page.by_id["success-share"] == "–"
    assert "fresh <night>" in page.text
    assert page.external_references() == []


def test_a_run_still_going_is_shown_as_running_with_its_items_in_flight(
    ledger: Ledger, clock: Clock
) -> None:
    ledger.add_items(_items(5))
    ledger.lock()
    ledger.start_run(1, "host", {})
    _submit_all(ledger)
    clock.advance(90)

    page = Page(render_html(ledger, name="t", manifest="m.toml"))

    assert page.by_id["last-run"].endswith(")")
    assert ": running for" in page.by_id["last-run"]
    assert headline(page)["in-flight"] == 5
    assert page.by_id["in-flight"].startswith("5 items are in flight")
    assert page.by_id["in-flight"].endswith("a run is going now.")
    assert "throttling not recorded for this run" in page.text
