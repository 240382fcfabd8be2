"""The dry run: the plan of a manifest, compared with its ledger, which it never writes."""

from __future__ import annotations

from pathlib import Path

from orchestrator.engine.dryrun import dry_run
from orchestrator.engine.expand import expand
from orchestrator.ledger import Ledger, State
from orchestrator.manifest import Manifest, load_manifest
from tests.engine.fakes import FakeCI
from tests.engine.support import write_manifest

CSV = "key,job_level\na/1.png,2\na/2.png,0\na/3.png,0\nb/4.png,0\n"


def manifest(tmp_path: Path) -> Manifest:
    (tmp_path / "keys.csv").write_text(CSV)
    path = write_manifest(
        tmp_path, 'csv = "keys.csv"\ninclude = ["a/*"]', extra="[limits]\nrate = 2\n"
    )
    return load_manifest(path)


async def test_the_plan_counts_objects_matches_and_levels_and_writes_no_ledger(
    tmp_path: Path,
) -> None:
    plan = await dry_run(manifest(tmp_path), FakeCI().client)

    assert (plan.seen, plan.matched, plan.levels, plan.already_final) == (4, 3, {2: 1, 0: 2}, 0)
    assert (plan.to_submit, plan.seconds, plan.rate) == (3, 1.5, 2.0)
    assert not list(tmp_path.rglob("*.sqlite"))


async def test_items_the_ledger_has_finished_are_not_counted_to_submit(tmp_path: Path) -> None:
    planned = manifest(tmp_path)
    with Ledger.open(planned.ledger_path) as ledger:
        with ledger.loading() as loader:
            await expand(planned, FakeCI().client, loader.add)
        claimed = ledger.claim(1)
        ledger.mark_failed([(claimed[0].item_id, "InvalidImage", "bad")])
        before = ledger.counts()

    plan = await dry_run(planned, FakeCI().client)

    assert (plan.already_final, plan.to_submit) == (1, 2)
    with Ledger.open(planned.ledger_path) as ledger:
        assert ledger.counts() == before == {**before, State.FAILED: 1, State.PENDING: 2}


def test_the_plan_says_per_job_what_changed_and_how_many_objects_run_again() -> None:
    from orchestrator.cli.run import _plan_lines
    from orchestrator.engine.dryrun import Plan

    plan = Plan(
        10, 10, {0: 30}, 0, 100.0, planned=30, jobs={"thumb": 10, "medium": 10, "webp": 10},
        replanned={"medium": (48112, 48112), "webp": (7, 0), "thumb": (5, 2)},
    )  # fmt: skip
    assert _plan_lines("nightly", plan)[-4:-1] == [
        "  medium: the operation changed since its last run; 48,112 objects will be processed again",
        "  webp: the output changed since its last run; 7 objects will be processed again",
        "  thumb: the operation or output changed since its last run; 5 objects will be processed"
        " again",
    ]
