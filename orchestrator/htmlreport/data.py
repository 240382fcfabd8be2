"""What the HTML report shows, read from a ledger with aggregate SQL.

Every query aggregates in SQLite and returns a bounded number of rows (bins, runs, failure
groups), so a ledger of millions of items costs scans, never memory per item. The attempt log
is read by rowid ranges (see `AttemptLog`), which SQLite sums without sorting. All queries run in one
read transaction, so the headline and the charts agree while a run is writing.
"""

from __future__ import annotations

import itertools
import json
import math
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from orchestrator.exceptions import LedgerError
from orchestrator.htmlreport.attemptlog import AttemptLog
from orchestrator.ledger import Ledger, LockInfo

__all__ = [
    "FailureGroup",
    "Grid",
    "Latency",
    "ReportData",
    "RunBar",
    "Timeline",
    "collect",
    "latency_from_bins",
    "timeline_on",
]

IN_FLIGHT: Final = ("submitting", "unknown", "submitted")
FINAL: Final = ("success", "failed", "cancelled")
# Latency bins are 2 % wide on a log scale: percentiles read from them are within about 1 %.
_BINS_PER_E: Final = 50
_MIN_LATENCY: Final = 0.01  # seconds; a clock skew between us and CI can make it negative
_BIN_CHOICES: Final = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600)
_MAX_BINS: Final = 90
# Where the runner leaves the throttled answers of a run, per Unix second.
THROTTLED_KEY: Final = "throttled:{run_id}"


@dataclass(frozen=True, slots=True)
class RunBar:
    """One run: when, how it ended, and what reached a final state during it."""

    run_id: int
    started_at: datetime
    finished_at: datetime | None
    exit_code: int | None
    success: int
    failed: int
    cancelled: int
    throttled: int | None  # None: not recorded (an older picjobs, or a killed run)

    @property
    def seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True, slots=True)
class Grid:
    """Equal time bins from `start`, where a timeline is drawn."""

    start: datetime
    width: int  # seconds
    bins: int

    @classmethod
    def spanning(cls, start: datetime, end: datetime) -> Grid:
        span = max(1.0, (end - start).total_seconds())
        width = _bin_seconds(span)
        return cls(start, width, max(1, math.ceil(span / width)))


@dataclass(frozen=True, slots=True)
class Timeline:
    """The last run in equal bins from its start: submissions, final states, throttled answers."""

    start: datetime
    bin_seconds: int
    submitted: tuple[int, ...]
    success: tuple[int, ...]
    failed: tuple[int, ...]
    throttled: tuple[int, ...] | None  # None: not recorded for this run


@dataclass(frozen=True, slots=True)
class Latency:
    """Seconds from submission to a final state: a histogram and its percentiles."""

    count: int
    edges: tuple[float, ...]  # len(counts) + 1, increasing
    counts: tuple[int, ...]
    p50: float | None
    p90: float | None
    p99: float | None
    # (bin, items, fastest, slowest) per log-scale bin: what merging ledgers' latencies needs.
    bins: tuple[tuple[int, int, float, float], ...] = ()


@dataclass(frozen=True, slots=True)
class FailureGroup:
    code: str
    message: str
    count: int
    examples: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReportData:
    name: str
    ledger: Path
    generated_at: datetime
    counts: Mapping[str, int]
    holder: LockInfo | None  # set while a run holds the ledger
    runs: tuple[RunBar, ...]  # the most recent, oldest first
    runs_total: int
    timeline: Timeline | None
    latency: Latency
    levels: Mapping[int, Mapping[str, int]]  # job_level -> state -> count
    failures: tuple[FailureGroup, ...]  # largest first
    failure_groups: int  # how many groups in all
    jobs: Mapping[str, Mapping[str, int]] = field(default_factory=dict)  # job -> state -> count
    shards: int | None = None  # the page of N shard ledgers merged
    problems: tuple[str, ...] = ()  # shard ledgers not read, or being written

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def in_flight(self) -> int:
        return sum(self.counts.get(state, 0) for state in IN_FLIGHT)

    @property
    def success_share(self) -> float | None:
        """Succeeded items as a share of those in a final state."""
        final = sum(self.counts.get(state, 0) for state in FINAL)
        return None if final == 0 else self.counts.get("success", 0) / final

    @property
    def last_run(self) -> RunBar | None:
        return self.runs[-1] if self.runs else None

    @property
    def running(self) -> bool:
        last = self.last_run
        return self.holder is not None and last is not None and last.finished_at is None


def collect(
    ledger: Ledger,
    name: str,
    *,
    now: datetime | None = None,
    max_runs: int = 40,
    max_groups: int = 25,
    examples: int = 10,
) -> ReportData:
    """Everything the page shows, in one read transaction."""
    now = now or datetime.now(UTC)
    holder = ledger.lock_holder()
    with _snapshot(ledger) as conn:
        counts = ledger.counts()
        runs, runs_total, timeline = _history(conn, max_runs, now)
        latency = _latency(conn)
        levels = _levels(conn)
        jobs = _jobs(conn)
        failures, groups = _failures(conn, max_groups, examples)
    return ReportData(
        name,
        ledger.path,
        now,
        counts,
        holder,
        runs,
        runs_total,
        timeline,
        latency,
        levels,
        failures,
        groups,
        jobs,
    )


@contextmanager
def _snapshot(ledger: Ledger) -> Iterator[sqlite3.Connection]:
    """A read transaction on the ledger's connection, with sqlite3 errors as LedgerError."""
    conn = ledger.connection
    try:
        conn.execute("BEGIN DEFERRED")  # a read snapshot: it never takes the write lock
        try:
            _ensure_ln(conn)
            yield conn
        finally:
            conn.execute("ROLLBACK")  # nothing was written
    except sqlite3.Error as exc:
        raise LedgerError(f"{ledger.path}: cannot read ledger: {exc}") from exc


def _ensure_ln(conn: sqlite3.Connection) -> None:
    """SQLite's math functions are a compile-time option: supply ln() where they are missing."""
    try:
        conn.execute("SELECT ln(2.0)").fetchone()
    except sqlite3.OperationalError:
        conn.create_function("ln", 1, math.log, deterministic=True)


def _time(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _throttled(conn: sqlite3.Connection, run_id: int) -> dict[int, int] | None:
    row = conn.execute(
        "SELECT value FROM meta WHERE key = ?", (THROTTLED_KEY.format(run_id=run_id),)
    ).fetchone()
    if row is None:
        return None
    try:
        return {int(second): int(n) for second, n in json.loads(row[0]).items()}
    except (ValueError, TypeError, AttributeError):
        return None


def _bin_seconds(span: float) -> int:
    return next((b for b in _BIN_CHOICES if span / b <= _MAX_BINS), _BIN_CHOICES[-1])


def _history(
    conn: sqlite3.Connection, limit: int, now: datetime
) -> tuple[tuple[RunBar, ...], int, Timeline | None]:
    """The most recent runs, with what reached a final state during each, and the last run's
    timeline."""
    total = int(conn.execute("SELECT count(*) FROM runs").fetchone()[0])
    runs = conn.execute(
        "SELECT run_id, started_at, finished_at, exit_code FROM runs ORDER BY run_id DESC LIMIT ?",
        (limit,),
    ).fetchall()[::-1]
    if not runs:
        return (), total, None
    log = AttemptLog(conn)
    bars = []
    timeline: Timeline | None = None
    for i, (run_id, started, finished, exit_code) in enumerate(runs):
        if i == len(runs) - 1:
            # The last run's timeline covers its window, so its totals come from it.
            timeline, (success, failed, cancelled) = _timeline(
                conn, log, run_id, started, finished, now
            )
        else:
            # A run's window ends when it finished; one that never did, where the next began.
            end = finished or runs[i + 1][1]
            _, success, failed, cancelled = log.tally(log.seek(started), log.seek(end, after=True))
        throttled = _throttled(conn, run_id)
        bars.append(
            RunBar(
                int(run_id),
                _time(started),
                None if finished is None else _time(finished),
                None if exit_code is None else int(exit_code),
                success,
                failed,
                cancelled,
                None if throttled is None else sum(throttled.values()),
            )
        )
    return tuple(bars), total, timeline


def _timeline(
    conn: sqlite3.Connection,
    log: AttemptLog,
    run_id: int,
    started: str,
    finished: str | None,
    now: datetime,
    grid: Grid | None = None,
) -> tuple[Timeline, tuple[int, int, int]]:
    """The run in equal time bins (its own, or `grid`'s when several ledgers' runs share one
    time axis), and its success, failed and cancelled totals."""
    start = _time(started)
    end = now if finished is None else _time(finished)
    grid = grid or Grid.spanning(start, end)
    stop = log.seek(finished or _iso(now), after=True)
    # On a grid wider than the run, the bins outside it get nothing of another run's.
    edges = [
        min(log.seek(_iso(max(grid.start + timedelta(seconds=k * grid.width), start))), stop)
        for k in range(grid.bins)
    ]
    edges.append(stop)
    tallies = [log.tally(first, stop) for first, stop in itertools.pairwise(edges)]
    per_second = _throttled(conn, run_id)
    throttled: tuple[int, ...] | None = None
    if per_second is not None:
        counts = [0] * grid.bins
        first_second = grid.start.timestamp()
        for second, n in per_second.items():
            counts[min(grid.bins - 1, max(0, int((second - first_second) // grid.width)))] += n
        throttled = tuple(counts)
    timeline = Timeline(
        grid.start,
        grid.width,
        tuple(t[0] for t in tallies),
        tuple(t[1] for t in tallies),
        tuple(t[2] for t in tallies),
        throttled,
    )
    return timeline, (sum(timeline.success), sum(timeline.failed), sum(t[3] for t in tallies))


def timeline_on(ledger: Ledger, grid: Grid, now: datetime) -> Timeline | None:
    """The ledger's last run drawn on `grid`: the shards of a manifest on one time axis."""
    with _snapshot(ledger) as conn:
        last = conn.execute(
            "SELECT run_id, started_at, finished_at FROM runs ORDER BY run_id DESC LIMIT 1"
        ).fetchone()
        if last is None:
            return None
        return _timeline(conn, AttemptLog(conn), int(last[0]), last[1], last[2], now, grid)[0]


def _latency(conn: sqlite3.Connection) -> Latency:
    # `+state` keeps SQLite off the state index: most items are final, and one table scan
    # costs less than a lookup per row.
    rows = conn.execute(
        "SELECT CAST(round(ln(max(d, ?1)) * ?2) AS INTEGER) AS bin, count(*), min(d), max(d) "
        "FROM (SELECT (julianday(finished_at) - julianday(submitted_at)) * 86400.0 AS d "
        "FROM items WHERE +state IN ('success', 'failed', 'cancelled') "
        "AND submitted_at IS NOT NULL AND finished_at IS NOT NULL) "
        "WHERE d IS NOT NULL GROUP BY bin ORDER BY bin",
        (_MIN_LATENCY, _BINS_PER_E),
    ).fetchall()
    return latency_from_bins([(int(b), int(n), float(lo), float(hi)) for b, n, lo, hi in rows])


def latency_from_bins(rows: list[tuple[int, int, float, float]]) -> Latency:
    """The histogram and percentiles of (bin, items, fastest, slowest) rows in bin order."""
    if not rows:
        return Latency(0, (), (), None, None, None)
    first, last = rows[0][0], rows[-1][0]
    counts = [0] * (last - first + 1)
    for index, n, _, _ in rows:
        counts[index - first] = n
    edges = tuple(math.exp((b - 0.5) / _BINS_PER_E) for b in range(first, last + 2))
    total = sum(counts)
    return Latency(
        total,
        edges,
        tuple(counts),
        _percentile(rows, total, 0.50),
        _percentile(rows, total, 0.90),
        _percentile(rows, total, 0.99),
        tuple(rows),
    )


def _percentile(rows: list[tuple[int, int, float, float]], total: int, q: float) -> float:
    """The q-quantile, interpolated inside the bin that holds its rank."""
    rank = max(1, math.ceil(q * total))
    seen = 0
    for _, n, low, high in rows:
        if seen + n >= rank:
            low, high = max(low, _MIN_LATENCY), max(high, _MIN_LATENCY)
            return float(low + (high - low) * (rank - seen - 0.5) / n if n > 1 else low)
        seen += n
    return float(max(rows[-1][3], _MIN_LATENCY))


def _jobs(conn: sqlite3.Connection) -> dict[str, dict[str, int]]:
    """Counts per manifest job; a single unnamed job's rows (NULL) are the job "default"."""
    jobs: dict[str, dict[str, int]] = {}
    for job, state, n in conn.execute(
        "SELECT coalesce(job, 'default'), state, count(*) FROM items GROUP BY job, state"
    ):
        jobs.setdefault(str(job), {})[str(state)] = int(n)
    return dict(sorted(jobs.items()))


def _levels(conn: sqlite3.Connection) -> dict[int, dict[str, int]]:
    levels: dict[int, dict[str, int]] = {}
    for level, state, n in conn.execute(
        "SELECT job_level, state, count(*) FROM items GROUP BY job_level, state"
    ):
        levels.setdefault(int(level), {})[str(state)] = int(n)
    return dict(sorted(levels.items()))


def _failures(
    conn: sqlite3.Connection, limit: int, examples: int
) -> tuple[tuple[FailureGroup, ...], int]:
    groups = conn.execute(
        "SELECT coalesce(code, ''), coalesce(message, ''), count(*) AS n, count(*) OVER () "
        "FROM items WHERE state = 'failed' GROUP BY 1, 2 ORDER BY n DESC, 1, 2 LIMIT ?",
        (limit,),
    ).fetchall()
    if not groups:
        return (), 0
    keys: dict[tuple[str, str], list[str]] = {(code, message): [] for code, message, _, _ in groups}
    wanted = sum(min(examples, n) for _, _, n, _ in groups)
    found = 0
    values = ", ".join("(?, ?)" for _ in groups)
    cursor = conn.execute(
        "SELECT coalesce(code, ''), coalesce(message, ''), key FROM items "
        f"WHERE state = 'failed' AND (coalesce(code, ''), coalesce(message, '')) IN (VALUES {values})",
        [part for code, message, _, _ in groups for part in (code, message)],
    )
    try:
        # Stops as soon as every group has its examples: most groups fill in their first rows.
        for code, message, key in cursor:
            bucket = keys[(code, message)]
            if len(bucket) < examples:
                bucket.append(key)
                found += 1
                if found == wanted:
                    break
    finally:
        cursor.close()
    failures = tuple(
        FailureGroup(code, message, int(n), tuple(keys[(code, message)]))
        for code, message, n, _ in groups
    )
    return failures, int(groups[0][3])
