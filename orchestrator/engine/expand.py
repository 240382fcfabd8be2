"""Expansion: source -> filters -> plan -> ledger, in batches, never holding the manifest whole."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

from orchestrator.ci.client import CIClient
from orchestrator.config import Manifest
from orchestrator.engine import retry
from orchestrator.items import Item, ObjectRef
from orchestrator.plan import Planner
from orchestrator.sources.csv import iter_csv
from orchestrator.sources.filters import ObjectFilter
from orchestrator.sources.inventory import iter_inventory
from orchestrator.sources.listing import iter_prefix

__all__ = ["Expansion", "expand", "source_batches"]

BATCH = 1000
ADD_GROUP = 50_000


@dataclass
class Expansion:
    seen: int = 0
    matched: int = 0
    added: int = 0
    skipped: bool = False


async def _csv_batches(manifest: Manifest) -> AsyncIterator[list[ObjectRef]]:
    assert manifest.source.csv_path is not None
    rows: Iterator[ObjectRef] = iter_csv(manifest.source.csv_path, manifest.target.bucket)
    while batch := list(itertools.islice(rows, BATCH)):
        yield batch
        await asyncio.sleep(0)  # let signals and the rest of the loop in between batches


def source_batches(
    manifest: Manifest,
    client: CIClient,
    policy: retry.RetryPolicy | None = None,
    budget: retry.RetryBudget | None = None,
) -> AsyncIterator[list[ObjectRef]]:
    src = manifest.source
    bucket = manifest.target.bucket
    if src.kind == "csv":
        return _csv_batches(manifest)
    if src.kind == "prefix":
        return iter_prefix(client, bucket, src.prefix or "", policy=policy, budget=budget)
    assert src.inventory_key is not None
    return iter_inventory(client, bucket, src.inventory_key, policy=policy, budget=budget)


async def expand(
    manifest: Manifest,
    client: CIClient,
    add: Callable[[list[Item]], int],
    *,
    policy: retry.RetryPolicy | None = None,
    budget: retry.RetryBudget | None = None,
) -> Expansion:
    """Plan every object the source yields and hand the items to `add` one batch at a time."""
    planner = Planner(manifest)
    keep = ObjectFilter(manifest.source).matches
    result = Expansion()
    pending: list[Item] = []
    async for refs in source_batches(manifest, client, policy, budget):
        result.seen += len(refs)
        items = [planner.plan(ref) for ref in refs if keep(ref)]
        result.matched += len(items)
        pending += items
        # The ledger writes fastest in large sorted groups; 50,000 items hold ~20 MB.
        if len(pending) >= ADD_GROUP:
            result.added += add(pending)
            pending = []
    if pending:
        result.added += add(pending)
    return result
