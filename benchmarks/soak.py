"""Scenario 10, soak: `Sizes.soak_jobs` jobs (200,000 at full size) end to end in one run.

`picjobs run` over a CSV manifest of that many rows, unthrottled (scenario 1's `rate` and
`concurrency`), against the emulator's cheapest path: instant jobs, no rate limit, image work
memoised, and outputs not written (`write_outputs = false`, see docs/emulator.md: every answer
stays the same, only the output objects are not stored). The inputs are indexed in the emulator
without files (`POST /_bench/index`), so no 200,000 files are seeded. What it measures is
whether the client stays flat as its ledger grows:

- peak RSS of the client process (`ru_maxrss` from `os.wait4`, its VmHWM), with the resident
  size sampled from `/proc/<pid>/statm` at the end of the first and of the last fifth;
- jobs/s over the first and over the last fifth of the submissions, from the arrival times of
  `POST /pic_jobs` in the emulator's request log (fifth of the jobs, not of the time), and the
  client's CPU per job over the same stretches (`/proc/<pid>/stat` samples).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from benchmarks.harness import (
    BUCKET,
    Measured,
    system_busy_seconds,
    write_keys_csv,
    write_manifest,
)
from benchmarks.report import Figure, at_least, at_most, info

if TYPE_CHECKING:
    from benchmarks.scenarios import Bench

__all__ = ["soak"]

RATE = 100_000  # as scenario 1: the rate never binds
CONCURRENCY = 64
RSS_TARGET_MIB = 100
KEPT_PACE = 90  # % of the first fifth's jobs/s the last fifth must keep


def _key(index: int) -> str:
    return f"soak/{index // 1000:04d}/{index:07d}.png"


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def fifths(times: Sequence[float]) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """((jobs/s, start, end) of the first fifth, the same of the last fifth) of `times`, sorted
    event times: a fifth of the events divided by the time they took."""
    ordered = sorted(times)
    n = len(ordered)
    k = n // 5
    if k < 1:
        raise ValueError(f"{n} submissions: too few for fifths")
    first = (ordered[0], ordered[k])
    last = (ordered[n - 1 - k], ordered[n - 1])

    def rate(span: tuple[float, float]) -> float:
        seconds = span[1] - span[0]
        return k / seconds if seconds > 0 else float("inf")

    return (rate(first), *first), (rate(last), *last)


def _rss_at(samples: Sequence[tuple[float, int]], moment: float) -> float | None:
    """The resident MiB of the last sample taken at or before `moment`."""
    before = [kib for t, kib in samples if t <= moment]
    return before[-1] / 1024 if before else None


def _cpu_per_job(
    samples: Sequence[tuple[float, float]], start: float, end: float, jobs: int
) -> tuple[float | None, str]:
    """Client CPU per job over [start, end], from the samples that bracket it: the CPU between
    them over the jobs of the stretch scaled to the time between them."""
    before = [s for s in samples if s[0] <= start] or list(samples[:1])
    after = [s for s in samples if s[0] >= end] or list(samples[-1:])
    if not before or not after or after[0][0] <= before[-1][0]:
        return None, "too few /proc samples"
    (t0, cpu0), (t1, cpu1) = before[-1], after[0]
    share = jobs * (t1 - t0) / (end - start) if end > start else jobs
    return (cpu1 - cpu0) / share * 1e6, f"{cpu1 - cpu0:.1f} s CPU over {t1 - t0:.1f} s"


@contextmanager
def _machine_samples(bench: Bench, every: float) -> Iterator[list[tuple[float, float, float]]]:
    """(time.monotonic(), emulator CPU seconds, CPU seconds of the whole machine) every
    `every` seconds while the block runs."""
    samples: list[tuple[float, float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.monotonic(), bench.emulator.cpu_seconds(), system_busy_seconds()))
            stop.wait(every)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()


def _between(samples: Sequence[tuple[float, ...]], start: float, end: float, column: int) -> float:
    """The growth of `column` from the last sample at or before `start` to the last at or
    before `end`; `samples` must not be empty."""
    before = [s[column] for s in samples if s[0] <= start] or [samples[0][column]]
    until = [s[column] for s in samples if s[0] <= end] or [before[-1]]
    return until[-1] - before[-1]


def _fifth_note(
    run: Measured, machine: Sequence[tuple[float, float, float]], start: float, end: float
) -> str:
    """The emulator's CPU and the other processes' CPU over a stretch, as a note."""
    if not machine or not run.cpu_samples:
        return ""
    seconds = end - start
    emulator = _between(machine, start, end, 1)
    client = _between(run.cpu_samples, start, end, 1)
    other = max(0.0, _between(machine, start, end, 2) - emulator - client)
    return (
        f"emulator busy {100 * emulator / seconds:.0f} %, "
        f"other processes {100 * other / seconds:.0f} % of a CPU"
    )


def soak(bench: Bench) -> list[Figure]:
    jobs = bench.sizes.soak_jobs
    name = f"10 soak, {jobs:,} jobs"
    folder = bench.run_dir("soak")
    keys = [_key(i) for i in range(jobs)]
    listed = folder / "inputs.txt"
    listed.write_text("\n".join(keys) + "\n", encoding="utf-8")
    csv = write_keys_csv(folder / "keys.csv", keys)
    manifest = write_manifest(
        folder / "manifest.toml", name="soak", csv=csv, rate=RATE, concurrency=CONCURRENCY
    )
    del keys

    bench.reset(rate=None, write_outputs=False)
    indexed = bench.emulator.index_objects(BUCKET, listed)
    bench.progress(f"10: picjobs, {jobs:,} jobs unthrottled; the input bucket lists {indexed:,}")
    every = 0.05 if jobs < 10_000 else 0.5
    with _machine_samples(bench, every) as machine:
        run = bench.picjobs(manifest, timeout=max(120.0, jobs / 100), sample_cpu=every)
    stats = bench.emulator.stats()
    note = bench.check("picjobs", run)
    created, duplicates = stats.get("jobs_created"), stats.get("duplicate_submissions")
    if created != jobs or duplicates:
        short = f"jobs created {created} of {jobs}, duplicates {duplicates}"
        bench.errors.append(short)
        note = _join(note, short)
    submits = bench.emulator.log().times_of("submit", exclude_status=429)
    rss_note = _join(f"user {run.user:.1f} s + sys {run.system:.1f} s", run.other_load, note)
    if len(submits) < 10:
        why = _join(f"{len(submits)} submissions logged", note)
        return [
            at_most(name, "client peak RSS", run.max_rss_mib, RSS_TARGET_MIB, "MiB", rss_note),
            at_least(name, "jobs/s, last fifth / first fifth", None, KEPT_PACE, "%", why),
        ]
    (first_rate, first_start, first_end), (last_rate, last_start, last_end) = fifths(submits)
    fifth = len(submits) // 5
    rss_first = _rss_at(run.rss_samples, first_end)
    rss_last = _rss_at(run.rss_samples, last_end)
    if rss_first is not None and rss_last is not None:
        rss_note = _join(
            f"resident {rss_first:.0f} MiB after the first fifth, {rss_last:.0f} MiB after the last",
            rss_note,
        )
    cpu_first, cpu_first_note = _cpu_per_job(run.cpu_samples, first_start, first_end, fifth)
    cpu_last, cpu_last_note = _cpu_per_job(run.cpu_samples, last_start, last_end, fifth)
    span = max(submits) - min(submits)
    return [
        info(
            name,
            "throughput",
            jobs / run.wall,
            "jobs/s",
            _join(
                f"{run.wall:.1f} s wall incl. start-up and expansion",
                f"submissions over {span:.1f} s",
                run.emulator_busy,
            ),
        ),
        at_most(name, "client peak RSS", run.max_rss_mib, RSS_TARGET_MIB, "MiB", rss_note),
        info(
            name,
            "jobs/s, first fifth",
            first_rate,
            "jobs/s",
            _join(
                f"{fifth:,} submissions in {first_end - first_start:.1f} s",
                _fifth_note(run, machine, first_start, first_end),
            ),
        ),
        info(
            name,
            "jobs/s, last fifth",
            last_rate,
            "jobs/s",
            _join(
                f"{fifth:,} submissions in {last_end - last_start:.1f} s",
                _fifth_note(run, machine, last_start, last_end),
            ),
        ),
        at_least(
            name,
            "jobs/s, last fifth / first fifth",
            100 * last_rate / first_rate,
            KEPT_PACE,
            "%",
        ),
        info(name, "client CPU per job, first fifth", cpu_first, "µs", cpu_first_note),
        info(name, "client CPU per job, last fifth", cpu_last, "µs", cpu_last_note),
    ]
