"""The report page of N shard ledgers merged: written through the Ledger API under a
controlled clock, then read as one by `collect_shards`."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from pathlib import Path

import pytest

from orchestrator.engine.tracker import ledger_state
from orchestrator.htmlreport.data import collect
from orchestrator.htmlreport.page import render_page
from orchestrator.htmlreport.shards import collect_shards
from orchestrator.items import Item
from orchestrator.ledger import JobUpdate, Ledger
from orchestrator.manifest import Manifest
from orchestrator.manifest.validation import load_manifest
from orchestrator.shard import shard_ledger_path

from .support import START, Clock


@pytest.fixture
def manifest(tmp_path: Path) -> Manifest:
    path = tmp_path / "night.toml"
    path.write_text(
        'name = "night"\n[target]\nbucket = "src-1250000000"\nregion = "ap-guangzhou"\n'
        '[source]\nprefix = "in/"\n[job]\nprocess_rule = "imageMogr2/thumbnail/64x"\n'
        'output = "out/{key}"\n'
    )
    return load_manifest(path)


def _shard(manifest: Manifest, k: int, clock: Clock) -> Ledger:
    return Ledger.open(shard_ledger_path(manifest.ledger_path, k, 2), clock=clock)


def _run(
    db: Ledger,
    clock: Clock,
    prefix: str,
    outcomes: list[tuple[float, str, str | None]],
    *,
    exit_code: int,
) -> None:
    """One run: every item submitted at its start and final `seconds` later."""
    db.add_items(
        [
            Item(
                f"{prefix}-{i}",
                "src-1250000000",
                f"in/{prefix}/{i}.jpg",
                "src-1250000000",
                "ap-guangzhou",
                f"out/{prefix}/{i}.jpg",
                0,
            )
            for i in range(len(outcomes))
        ]
    )
    start = clock.now
    run = db.start_run(1, "host", {})
    claimed = db.claim(1000)
    db.mark_submitted([(c.item_id, f"job-{c.item_id}") for c in claimed])
    for c, (seconds, state, code) in sorted(
        zip(claimed, outcomes, strict=True), key=lambda pair: pair[1][0]
    ):
        clock.now = start + timedelta(seconds=seconds)
        db.record_states(
            [JobUpdate(f"job-{c.item_id}", ledger_state(state), code, code, finished_at=clock.now)]
        )
    db.finish_run(run, exit_code, db.counts())


def test_two_shards_read_as_one_add_up_to_the_page_of_one_ledger_holding_both(
    manifest: Manifest, tmp_path: Path
) -> None:
    clock = Clock()
    first = [(1.0 + i, "Success", None) for i in range(20)] + [(30.0, "Failed", "A")] * 3
    second = [(2.5 * i + 1, "Success", None) for i in range(10)] + [(40.0, "Failed", "B")] * 2
    second += [(41.0, "Failed", "A")]
    with _shard(manifest, 0, clock) as db:
        _run(db, clock, "a", first, exit_code=1)
    clock.now = START + timedelta(seconds=5)  # the second shard started a little later
    with _shard(manifest, 1, clock) as db:
        _run(db, clock, "b", second, exit_code=1)
    clock.now = START
    with Ledger.open(tmp_path / "one.sqlite", clock=clock) as db:
        _run(db, clock, "a", first, exit_code=1)
        clock.now = START + timedelta(seconds=5)
        _run(db, clock, "b", second, exit_code=1)
        whole = collect(db, "night", now=clock.now)

    data, problems = collect_shards(manifest, 2, now=clock.now)

    assert problems == []
    assert data.shards == 2
    assert data.counts == whole.counts
    assert {state: n for state, n in data.counts.items() if n} == {"success": 30, "failed": 6}
    assert data.latency.counts == whole.latency.counts
    assert (data.latency.p50, data.latency.p90, data.latency.p99) == (
        whole.latency.p50,
        whole.latency.p90,
        whole.latency.p99,
    )
    assert [(g.code, g.count) for g in data.failures] == [("A", 4), ("B", 2)]
    assert data.failure_groups == 2
    assert [(r.run_id, r.success, r.failed, r.exit_code) for r in data.runs] == [(1, 30, 6, 1)]
    assert data.runs[0].started_at == START
    assert data.runs[0].seconds == 46.0  # from the first shard's start to the last's end
    assert data.timeline is not None
    assert data.timeline.start == START
    assert sum(data.timeline.submitted) == 36
    assert sum(data.timeline.success) == 30 and sum(data.timeline.failed) == 6
    assert data.timeline.bin_seconds == 1
    assert data.timeline.failed[30] == 3  # shard 0's, 30 s after the set's start
    assert data.timeline.failed[45] == 3  # shard 1's, 40-41 s after its own start, 5 s later


def test_a_shard_still_running_makes_the_sets_run_running_and_worst_exit_code_wins(
    manifest: Manifest,
) -> None:
    clock = Clock()
    with _shard(manifest, 0, clock) as db:
        _run(db, clock, "a", [(1.0, "Success", None)], exit_code=0)
        _run(db, clock, "c", [(1.0, "Success", None)], exit_code=0)
    with _shard(manifest, 1, clock) as db:
        _run(db, clock, "b", [(1.0, "Failed", "X")], exit_code=1)
        db.start_run(1, "host", {})

    data, problems = collect_shards(manifest, 2, now=clock.now)

    assert problems == []  # a run row without the lock: a killed run, not one being written
    assert [(r.run_id, r.exit_code) for r in data.runs] == [(1, 1), (2, None)]
    assert data.runs[1].finished_at is None


def test_a_missing_shard_ledger_is_named_and_the_others_still_add_up(manifest: Manifest) -> None:
    clock = Clock()
    with _shard(manifest, 1, clock) as db:
        _run(db, clock, "b", [(1.0, "Success", None)] * 2, exit_code=0)

    data, problems = collect_shards(manifest, 2, now=clock.now)

    assert [(p.shard, p.condition) for p in problems] == [(0, "missing")]
    assert data.problems == (str(problems[0]),)
    assert data.counts["success"] == data.total == 2


def test_the_page_of_shards_reruns_failures_shard_by_shard(manifest: Manifest) -> None:
    clock = Clock()
    for k in (0, 1):
        with _shard(manifest, k, clock) as db:
            _run(db, clock, f"s{k}", [(1.0, "Failed", "X")], exit_code=1)
    data, _ = collect_shards(manifest, 2, now=clock.now)

    page = render_page(data, manifest="night.toml", version="test")

    rerun = re.search(r'<pre id="rerun">(.*?)</pre>', page, re.S)
    assert rerun is not None
    assert html.unescape(rerun.group(1)).splitlines() == [
        "picjobs report night.toml --shards 2 --failed-only -o failed.csv",
        "for k in $(seq 0 1); do",
        "  picjobs run --shard $k/2 --retry-failed night.toml",
        "done",
    ]
