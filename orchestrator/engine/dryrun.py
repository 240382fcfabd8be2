"""The dry run: expand the manifest into a scratch ledger and compare it with the real one."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.cloud.client import CIClient
from orchestrator.cloud.retry import Retrier
from orchestrator.engine.expand import expand
from orchestrator.engine.skip import SkipPreview, preview_skip
from orchestrator.ledger import Ledger, State
from orchestrator.manifest import Manifest

__all__ = ["Plan", "dry_run"]


@dataclass(frozen=True)
class Plan:
    """What a run of the manifest would do, as far as can be known without submitting."""

    seen: int  # objects the source yields
    matched: int  # of those, the ones the filters keep
    levels: dict[int, int]  # JobLevel -> items to plan at it
    already_final: int  # planned items the real ledger has already finished
    rate: float  # requests per second the run would send at
    planned: int | None = None  # items: one per matched object per job (None: as matched)
    jobs: dict[str, int] = field(default_factory=dict)  # job -> items it plans
    # job -> (its objects the ledger has under another id, how many of them keep their output):
    # the job's operation or output changed since it last ran
    replanned: dict[str, tuple[int, int]] = field(default_factory=dict)
    skips: list[SkipPreview] = field(default_factory=list)  # one per job that skips
    forced: int = 0  # with --force: items skipped earlier, which the run would process

    @property
    def to_submit(self) -> int:
        skipped = sum(skip.existing for skip in self.skips if not skip.force)
        planned = self.matched if self.planned is None else self.planned
        return planned - self.already_final + self.forced - skipped

    @property
    def seconds(self) -> float:
        return self.to_submit / self.rate


async def dry_run(
    manifest: Manifest,
    client: CIClient,
    retrier: Retrier | None = None,
    *,
    force: bool = False,
) -> Plan:
    """Expand into a ledger that is thrown away; the manifest's own ledger is only read.

    With `force`, as `run --force` would: skip_existing ignored, items it skipped processed."""
    retrier = retrier or Retrier()
    with tempfile.TemporaryDirectory() as tmp, Ledger.open(Path(tmp) / "plan.sqlite") as plan:
        with plan.loading() as loader:
            expansion = await expand(manifest, client, loader.add, retrier=retrier)
        done, replanned, forced = _against_ledger(manifest, plan, force=force)
        levels = plan.level_counts(State.PENDING)
        jobs = {job: sum(counts.values()) for job, counts in plan.job_counts().items()}
        real = manifest.ledger_path if manifest.ledger_path.exists() else None
        skips = []
        for job in manifest.jobs:
            found = await preview_skip(plan, client, job, retrier, force=force, real=real)
            if found is not None:
                skips.append(found)
    return Plan(
        expansion.seen,
        expansion.matched,
        levels,
        done,
        manifest.limits.rate,
        planned=expansion.planned,
        jobs=jobs,
        replanned=replanned,
        skips=skips,
        forced=forced,
    )


def _against_ledger(
    manifest: Manifest, plan: Ledger, *, force: bool
) -> tuple[int, dict[str, tuple[int, int]], int]:
    """How many planned items the real ledger has finished, per job how many objects it has
    under other ids, and (with `force`) how many of the finished ones it skipped."""
    if not manifest.ledger_path.exists():
        return 0, {}, 0
    with Ledger.open(manifest.ledger_path, journal=manifest.limits.ledger_journal) as real:
        done = real.count_final_of(plan)
        forced = real.count_final_of(plan, [State.SKIPPED]) if force else 0
        return done, real.replanned_of(plan) if done < plan.total() else {}, forced
