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
    already_final: int  # matched items the real ledger has already finished
    rate: float  # requests per second the run would send at
    skips: list[SkipPreview] = field(default_factory=list)  # one per job that skips
    forced: int = 0  # with --force: items skipped earlier, which the run would process

    @property
    def to_submit(self) -> int:
        skipped = sum(skip.existing for skip in self.skips if not skip.force)
        return self.matched - self.already_final + self.forced - skipped

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
        done, forced = _already_final(manifest.ledger_path, plan, force=force)
        levels = plan.level_counts(State.PENDING)
        real = manifest.ledger_path if manifest.ledger_path.exists() else None
        job = manifest.job
        found = await preview_skip(plan, client, job, retrier, force=force, real=real)
        skips = [] if found is None else [found]
    return Plan(
        expansion.seen, expansion.matched, levels, done, manifest.limits.rate, skips, forced
    )


def _already_final(ledger_path: Path, plan: Ledger, *, force: bool) -> tuple[int, int]:
    """(items of `plan` final in the real ledger, of those the skipped ones if `force`)."""
    if not ledger_path.exists():
        return 0, 0
    with Ledger.open(ledger_path) as real:
        forced = real.count_final_of(plan, [State.SKIPPED]) if force else 0
        return real.count_final_of(plan), forced
