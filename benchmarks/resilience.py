"""Scenarios 8 and 9: keeping the pace under faults and on a quota shared with another client.

8, chaos: the fault mix of issue 13 (8 % 503, 5 % 429, 4 % 500, 4 % lost answers, 2 % connection
resets, 1 % two-second stalls) on every CI request, at `rate = 300` against an emulator that
is not rate-limited, side by side with the same run without faults.

9, shared quota: the emulator admits 100 CI requests a second in all; a competing client
(`benchmarks.floor --mode http`, unsigned `POST /jobs`, which the emulator counts against the
same quota before it refuses them for want of a signature) sends 60 a second for the whole run,
and picjobs runs at `rate = 100`.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.harness import REPO, RequestLog, achieved_rate, child_env, ledger_counts
from benchmarks.report import Figure, at_least, at_most, info
from benchmarks.scenarios import Bench

__all__ = ["FAULT_MIX", "RESILIENCE", "chaos", "shared_quota"]

# The mix of issue 13. A connection reset is split evenly between one before the request takes
# effect and one after (the job is created, the answer lost on a dropped line).
FAULT_MIX: dict[str, object] = {
    "error_503": 0.08,
    "error_429": 0.05,
    "error_500": 0.04,
    "lost": 0.04,
    "reset_before": 0.01,
    "reset_after": 0.01,
    "latency": 0.01,
    "latency_seconds": 2.0,
    "seed": 13,
}
CHAOS_RATE = 300
SHARED_QUOTA = 100
COMPETITOR_RATE = 60


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def _ledger(manifest: Path, name: str) -> Path:
    return manifest.parent / ".picjobs" / f"{name}.sqlite"


def chaos(bench: Bench) -> list[Figure]:
    jobs = bench.sizes.chaos_jobs
    keys = set(bench.keys[:jobs])
    name = f"8 chaos, {jobs:,} jobs at {CHAOS_RATE}/s"

    bench.reset(rate=None)
    clean_manifest = bench.picjobs_manifest("chaos-clean", jobs, rate=CHAOS_RATE)
    bench.progress(f"8: picjobs at {CHAOS_RATE}/s, {jobs} jobs, no faults")
    clean = bench.picjobs(clean_manifest, timeout=max(60.0, jobs / 20))
    clean_note = bench.check("picjobs without faults", clean)

    bench.reset(rate=None)
    bench.emulator.set_faults(**FAULT_MIX, lost_seconds=bench.sizes.lost_seconds)
    manifest = bench.picjobs_manifest("chaos", jobs, rate=CHAOS_RATE)
    limit = bench.sizes.chaos_timeout
    bench.progress(f"8: the same with the fault mix of issue 13 (stopped after {limit:.0f} s)")
    faulted = bench.picjobs(manifest, timeout=limit)
    note = bench.check("picjobs with faults", faulted)
    stats = bench.emulator.stats()
    bench.emulator.set_faults()
    submitted = {entry["input_object"] for entry in stats["submissions"]}
    missing = len(keys - submitted)
    duplicates = int(stats["duplicate_submissions"])
    ledger = _ledger(manifest, "chaos")
    counts = ledger_counts(ledger) if ledger.exists() else {}
    success = counts.get("success", 0)
    ratio = faulted.wall / clean.wall
    bound = " (a lower bound: stopped at the time limit)" if faulted.timed_out else ""
    injected = ", ".join(f"{kind} {n}" for kind, n in sorted(stats["faults"].items()))
    return [
        info(
            name,
            "wall time without faults",
            clean.wall,
            "s",
            _join(f"{jobs / clean.wall:.0f} jobs/s", clean.other_load, clean_note),
        ),
        info(
            name,
            "wall time with faults",
            faulted.wall,
            "s",
            _join(
                f"{success / faulted.wall:.1f} jobs/s",
                f"injected: {injected}",
                faulted.other_load,
                note,
            ),
        ),
        at_most(name, "wall time, with / without faults", ratio, 2, "x", bound.strip(" ()")),
        at_most(name, "duplicate jobs (emulator's job list)", duplicates, 0),
        at_most(name, "inputs with no job (emulator's job list)", missing, 0),
        at_least(
            name,
            "items Success in the ledger",
            success,
            jobs,
            note=", ".join(f"{state} {n}" for state, n in sorted(counts.items())),
        ),
    ]


def _only(log: RequestLog, keep: Callable[[str], bool]) -> RequestLog:
    rows = [i for i, op in enumerate(log.ops) if keep(op)]
    return RequestLog(
        [log.times[i] for i in rows], [log.ops[i] for i in rows], [log.statuses[i] for i in rows]
    )


def _competitor(bench: Bench, seconds: float) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "benchmarks.floor",
        "--mode",
        "http",
        "--rate",
        str(COMPETITOR_RATE),
        "--count",
        str(int(COMPETITOR_RATE * seconds)),
        "--url",
        bench.emulator.url + "/jobs",
        "--workers",
        "8",
    ]
    proc = subprocess.Popen(
        command,
        env=child_env(),
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if bench.client_cpus is not None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(proc.pid, bench.client_cpus)
    return proc


def shared_quota(bench: Bench) -> list[Figure]:
    jobs = bench.sizes.shared_jobs
    name = f"9 shared quota, {SHARED_QUOTA}/s, other client {COMPETITOR_RATE}/s"
    bench.reset(rate=SHARED_QUOTA, burst=SHARED_QUOTA // 10)
    manifest = bench.picjobs_manifest("shared", jobs, rate=SHARED_QUOTA)
    timeout = max(90.0, jobs / 10)
    bench.progress(
        f"9: picjobs at {SHARED_QUOTA}/s, {jobs} jobs, emulator enforcing {SHARED_QUOTA}/s "
        f"shared with a client sending {COMPETITOR_RATE}/s"
    )
    competitor = _competitor(bench, timeout + 10)
    try:
        time.sleep(1.0)  # the other client is already sending when picjobs starts
        run = bench.picjobs(manifest, timeout=timeout)
    finally:
        competitor.terminate()
        competitor.wait(10)
    note = bench.check("picjobs", run)
    log = bench.emulator.log().ci
    ours, theirs = _only(log, lambda op: op != "jobs"), _only(log, lambda op: op == "jobs")
    achieved, span = achieved_rate(ours)
    refused = ours.count(status=429)
    share = 100 * refused / len(ours.times) if ours.times else None
    submits = ours.times_of("submit")
    first, last = (min(submits), max(submits)) if submits else (0.0, 0.0)
    during = [s for t, s in zip(theirs.times, theirs.statuses, strict=True) if first <= t <= last]
    their_share = 100 * during.count(429) / len(during) if during else None
    their_rate = len(during) / span if span else 0.0
    return [
        at_least(
            name,
            "picjobs accepted rate",
            achieved,
            32,
            "req/s",
            _join(f"over {span:.1f} s of submission", run.other_load, note),
        ),
        at_most(
            name,
            "picjobs 429 share of answers",
            share,
            5,
            "%",
            f"{refused} of {len(ours.times)}",
        ),
        at_most(
            name,
            "other client's 429 share",
            their_share,
            10,
            "%",
            f"{during.count(429)} of {len(during)} sent while picjobs submitted "
            f"({their_rate:.1f} req/s)",
        ),
    ]


RESILIENCE: dict[int, Callable[[Bench], list[Figure]]] = {8: chaos, 9: shared_quota}
