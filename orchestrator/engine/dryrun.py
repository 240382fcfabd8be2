"""The dry run: expand the manifest into a scratch ledger and compare it with the real one."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from orchestrator.cloud.client import CIClient
from orchestrator.cloud.retry import Retrier
from orchestrator.engine.expand import expand
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

    @property
    def to_submit(self) -> int:
        return self.matched - self.already_final

    @property
    def seconds(self) -> float:
        return self.to_submit / self.rate


async def dry_run(manifest: Manifest, client: CIClient, retrier: Retrier | None = None) -> Plan:
    """Expand into a ledger that is thrown away; the manifest's own ledger is only read."""
    with tempfile.TemporaryDirectory() as tmp, Ledger.open(Path(tmp) / "plan.sqlite") as plan:
        with plan.loading() as loader:
            expansion = await expand(manifest, client, loader.add, retrier=retrier)
        done = _already_final(manifest, plan)
        levels = plan.level_counts(State.PENDING)
    return Plan(expansion.seen, expansion.matched, levels, done, manifest.limits.rate)


def _already_final(manifest: Manifest, plan: Ledger) -> int:
    if not manifest.ledger_path.exists():
        return 0
    with Ledger.open(manifest.ledger_path, journal=manifest.limits.ledger_journal) as real:
        return real.count_final_of(plan)
