"""Expansion: source -> filters -> plan -> ledger, in batches, never holding the manifest whole."""

from __future__ import annotations

import asyncio
import gc
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

from orchestrator.cloud.client import CIClient
from orchestrator.cloud.retry import Retrier
from orchestrator.exceptions import OutputCollision, SourceError
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
    matched: int = 0  # objects the filters keep
    planned: int = 0  # items: one per matched object per job (a CSV row may name one job)
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
    ready: Callable[[list[ItemRecord]], Awaitable[None]] | None = None,
) -> Expansion:
    """Plan every object the source yields, once per job, and hand the items to `add` one
    batch at a time (a batch's items grouped by job), each once `ready` for it returns."""
    planners: list[tuple[str, Callable[[ObjectRef], ItemRecord]]] = [
        (job.name, Planner(manifest, job).record) for job in manifest.jobs
    ]
    # Two jobs with the same operation and output bucket would give an object's two items one
    # id if their templates agreed on it: the ledger would keep one silently.
    twins = [
        (first, second)
        for first, a in enumerate(manifest.jobs)
        for second, b in enumerate(manifest.jobs)
        if first < second
        and (a.output_bucket, a.operation_fingerprint) == (b.output_bucket, b.operation_fingerprint)
    ]
    names = set(manifest.job_names)
    rows_name_jobs = manifest.source.kind == "csv"
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
            kept = refs if keep is None else [ref for ref in refs if keep(ref)]
            result.matched += len(kept)
            if rows_name_jobs and any(ref.job is not None for ref in kept):
                records = _restricted(kept, planners, names, str(manifest.source.csv_path))
            elif len(planners) == 1:
                records = list(map(planners[0][1], kept))
            else:
                per_job = [list(map(plan, kept)) for _name, plan in planners]
                for first, second in twins:
                    _check_twins(
                        per_job[first], per_job[second], planners[first][0], planners[second][0]
                    )
                records = list(itertools.chain.from_iterable(per_job))
            result.planned += len(records)
            if ready is not None:
                await ready(records)
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


def _restricted(
    refs: list[ObjectRef],
    planners: list[tuple[str, Callable[[ObjectRef], ItemRecord]]],
    names: set[str],
    shown: str,
) -> list[ItemRecord]:
    """Items for CSV rows of which some name their job: such a row is planned by that job only."""
    for ref in refs:
        if ref.job is not None and ref.job not in names:
            where = shown if ref.line is None else f"{shown}:{ref.line}"
            raise SourceError(
                f"{where}: job {ref.job!r} is not a job of this manifest"
                f" ({', '.join(sorted(names))})"
            )
    return [
        plan(ref) for name, plan in planners for ref in refs if ref.job is None or ref.job == name
    ]


def _check_twins(first: list[ItemRecord], second: list[ItemRecord], a: str, b: str) -> None:
    for one, other in zip(first, second, strict=True):
        if one[5] == other[5]:
            raise OutputCollision(f"{one[3]}/{one[5]}", one[2], other[2], jobs=(a, b))
