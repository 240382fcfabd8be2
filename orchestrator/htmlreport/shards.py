"""The report page of a sharded manifest: its N shard ledgers read one at a time (a thousand
shards must not hold a thousand files open) and merged into one `ReportData`.

Counts, JobLevels, jobs, latency bins and failure groups add up exactly. Runs are matched by
number: run n of the set is the n-th run of every shard, as when one cron line or one
Kubernetes Job starts them all; it started with the first of them, ended with the last, and
exited with the worst code. The last runs of all shards are drawn on one time axis.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, TypeVar

from orchestrator.exceptions import PicjobsError
from orchestrator.exit_codes import ExitCode
from orchestrator.htmlreport.data import (
    FailureGroup,
    Grid,
    ReportData,
    RunBar,
    Timeline,
    collect,
    latency_from_bins,
    timeline_on,
)
from orchestrator.ledger import Ledger
from orchestrator.manifest import Manifest
from orchestrator.shard import ShardProblem, shard_ledger_path, shard_paths

__all__ = ["collect_shards"]

K = TypeVar("K")

# The set's exit code is the worst of its shards'; later in this order is worse.
_SEVERITY: Final = (
    ExitCode.OK,
    ExitCode.INCOMPLETE,
    ExitCode.FAILED,
    ExitCode.TRIPPED,
    ExitCode.LOCKED,
    ExitCode.USAGE,
)
# Failure groups read per shard before merging: enough that the merged largest ones are exact
# unless a shard has more distinct (Code, Message) pairs than this.
_GROUPS_PER_SHARD: Final = 1000


def collect_shards(
    manifest: Manifest,
    count: int,
    *,
    now: datetime | None = None,
    max_runs: int = 40,
    max_groups: int = 25,
    examples: int = 10,
) -> tuple[ReportData, list[ShardProblem]]:
    """The merged page data of shards 0..count-1, and every shard ledger not read or being
    written."""
    now = now or datetime.now(UTC)
    parts: list[tuple[Path, ReportData]] = []
    problems: list[ShardProblem] = []
    for k, path in enumerate(shard_paths(manifest, count)):
        if not path.exists():
            problems.append(ShardProblem(k, count, path, "missing"))
            continue
        try:
            with _open(manifest, path) as db:
                data = collect(
                    db, manifest.name, now=now, max_groups=_GROUPS_PER_SHARD, examples=examples
                )
        except PicjobsError as exc:
            problems.append(ShardProblem(k, count, path, "unreadable", str(exc)))
            continue
        if data.holder is not None:
            problems.append(ShardProblem(k, count, path, "running", str(data.holder)))
        parts.append((path, data))
    shown = [data for _, data in parts]
    runs = _runs([data.runs for data in shown], max_runs)
    timeline = None
    if runs:
        grid = Grid.spanning(runs[-1].started_at, runs[-1].finished_at or now)
        timeline = _timelines(manifest, [path for path, _ in parts], grid, now)
    failures, groups = _failures([data.failures for data in shown], max_groups, examples)
    merged = ReportData(
        manifest.name,
        shard_ledger_path(manifest.ledger_path, "*", count),
        now,
        _add(data.counts for data in shown),
        next((data.holder for data in shown if data.holder is not None), None),
        runs,
        max((data.runs_total for data in shown), default=0),
        timeline,
        latency_from_bins(_latency_bins(data.latency.bins for data in shown)),
        _add_nested(data.levels for data in shown),
        failures,
        groups,
        _add_nested(data.jobs for data in shown),
        shards=count,
        problems=tuple(str(problem) for problem in problems),
    )
    return merged, problems


def _open(manifest: Manifest, path: Path) -> Ledger:
    return Ledger.open(path, journal=manifest.limits.ledger_journal)


def _add(mappings: Iterable[Mapping[K, int]]) -> dict[K, int]:
    total: dict[K, int] = {}
    for mapping in mappings:
        for key, n in mapping.items():
            total[key] = total.get(key, 0) + n
    return total


def _add_nested(mappings: Iterable[Mapping[K, Mapping[str, int]]]) -> dict[K, dict[str, int]]:
    total: dict[K, dict[str, int]] = {}
    for mapping in mappings:
        for key, inner in mapping.items():
            total[key] = _add([total.get(key, {}), inner])
    return dict(sorted(total.items(), key=lambda pair: str(pair[0])))


def _worst(codes: list[int | None]) -> int | None:
    if any(code is None for code in codes):
        return None  # a shard's run is going, or ended without recording its code
    rank = {int(code): n for n, code in enumerate(_SEVERITY)}
    return max((code for code in codes if code is not None), key=lambda c: rank.get(c, 0))


def _runs(per_shard: list[tuple[RunBar, ...]], limit: int) -> tuple[RunBar, ...]:
    by_number: dict[int, list[RunBar]] = {}
    for runs in per_shard:
        for run in runs:
            by_number.setdefault(run.run_id, []).append(run)
    merged = []
    for number in sorted(by_number)[-limit:]:
        bars = by_number[number]
        ends = [bar.finished_at for bar in bars]
        throttled = [bar.throttled for bar in bars if bar.throttled is not None]
        merged.append(
            RunBar(
                number,
                min(bar.started_at for bar in bars),
                None if None in ends else max(end for end in ends if end is not None),
                _worst([bar.exit_code for bar in bars]),
                sum(bar.success for bar in bars),
                sum(bar.failed for bar in bars),
                sum(bar.cancelled for bar in bars),
                sum(throttled) if throttled else None,
            )
        )
    return tuple(merged)


def _timelines(manifest: Manifest, paths: list[Path], grid: Grid, now: datetime) -> Timeline:
    """Every shard's last run on one grid, added bin by bin."""
    zero = (0,) * grid.bins
    submitted, success, failed = list(zero), list(zero), list(zero)
    throttled: list[int] | None = None
    for path in paths:
        try:
            with _open(manifest, path) as db:
                timeline = timeline_on(db, grid, now)
        except PicjobsError:
            continue  # read a moment ago; its problem, if any, is named with the others
        if timeline is None:
            continue
        for total, part in (
            (submitted, timeline.submitted),
            (success, timeline.success),
            (failed, timeline.failed),
        ):
            for i, n in enumerate(part):
                total[i] += n
        if timeline.throttled is not None:
            throttled = throttled or list(zero)
            for i, n in enumerate(timeline.throttled):
                throttled[i] += n
    return Timeline(
        grid.start,
        grid.width,
        tuple(submitted),
        tuple(success),
        tuple(failed),
        None if throttled is None else tuple(throttled),
    )


def _latency_bins(
    per_shard: Iterable[tuple[tuple[int, int, float, float], ...]],
) -> list[tuple[int, int, float, float]]:
    bins: dict[int, tuple[int, float, float]] = {}
    for rows in per_shard:
        for index, n, fastest, slowest in rows:
            if index in bins:
                m, low, high = bins[index]
                bins[index] = (m + n, min(low, fastest), max(high, slowest))
            else:
                bins[index] = (n, fastest, slowest)
    return [(index, *bins[index]) for index in sorted(bins)]


def _failures(
    per_shard: Iterable[tuple[FailureGroup, ...]], limit: int, examples: int
) -> tuple[tuple[FailureGroup, ...], int]:
    groups: dict[tuple[str, str], tuple[int, list[str]]] = {}
    for failures in per_shard:
        for group in failures:
            n, keys = groups.get((group.code, group.message), (0, []))
            groups[(group.code, group.message)] = (n + group.count, keys + list(group.examples))
    ranked = sorted(groups.items(), key=lambda pair: (-pair[1][0], pair[0]))
    return (
        tuple(
            FailureGroup(code, message, n, tuple(keys[:examples]))
            for (code, message), (n, keys) in ranked[:limit]
        ),
        len(groups),
    )
