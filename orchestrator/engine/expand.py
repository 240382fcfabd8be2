"""Expansion: source -> filters -> plan -> ledger, in batches, never holding the manifest whole."""

from __future__ import annotations

import asyncio
import gc
import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

from orchestrator.cloud.client import CIClient
from orchestrator.cloud.retry import Retrier
from orchestrator.items import ItemRecord, ObjectRef
from orchestrator.manifest import Manifest
from orchestrator.plan import Planner
from orchestrator.sources.csv import iter_csv
from orchestrator.sources.filters import ObjectFilter
from orchestrator.sources.inventory import iter_inventory
from orchestrator.sources.listing import iter_prefix

__all__ = ["Expansion", "expand", "source_batches"]

BATCH = 1000


@dataclass
class Expansion:
    seen: int = 0
    matched: int = 0
    added: int = 0  # filled in by the caller, from what its ledger reports
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
    retrier: Retrier | None = None,
) -> AsyncIterator[list[ObjectRef]]:
    src = manifest.source
    bucket = manifest.target.bucket
    if src.kind == "csv":
        return _csv_batches(manifest)
    if src.kind == "prefix":
        return iter_prefix(client, bucket, src.prefix or "", retrier=retrier)
    assert src.inventory_key is not None
    return iter_inventory(client, bucket, src.inventory_key, retrier=retrier)


async def expand(
    manifest: Manifest,
    client: CIClient,
    add: Callable[[list[ItemRecord]], object],
    *,
    retrier: Retrier | None = None,
) -> Expansion:
    """Plan every object the source yields and hand the items to `add` one batch at a time."""
    plan = Planner(manifest).record
    object_filter = ObjectFilter(manifest.source)
    keep: Callable[[ObjectRef], bool] | None = (
        None if object_filter.passes_everything else object_filter.matches
    )
    if manifest.shard is not None:
        # Other shards' objects are dropped first, before the filters and planning: a shard of
        # N pays for its hash per row and for planning only its 1/N of them.
        keep = _both(manifest.shard.keeper(), keep)
    result = Expansion()
    # Expansion makes millions of short-lived tuples and no reference cycles: the cyclic
    # collector would only walk them (3 % of a million-row expansion).
    collecting = gc.isenabled()
    gc.disable()
    try:
        async for refs in source_batches(manifest, client, retrier):
            result.seen += len(refs)
            records = [plan(ref) for ref in refs if keep is None or keep(ref)]
            result.matched += len(records)
            add(records)
    finally:
        if collecting:
            gc.enable()
    return result


def _both(
    first: Callable[[ObjectRef], bool], then: Callable[[ObjectRef], bool] | None
) -> Callable[[ObjectRef], bool]:
    if then is None:
        return first
    return lambda ref: first(ref) and then(ref)
