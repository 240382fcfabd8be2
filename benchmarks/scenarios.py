"""The scenarios (10 in `soak`, 11 in `htmlreport`, 12 in `listing`, 13 in `emulatorcpu`, 14 in `skipping`).
Each returns its figures; each child process has a time limit.

Sizes come from `Sizes`: `FULL` is what the targets are about, `QUICK` keeps the harness
exercised in seconds (the smoke test).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.emulatorcpu import emulator_cpu
from benchmarks.harness import (
    BUCKET,
    OUTPUT_BUCKET,
    REGION,
    REPO,
    RULE,
    EmulatorProcess,
    Measured,
    RequestLog,
    achieved_rate,
    child_env,
    cpu_between,
    ledger_counts,
    max_in_window,
    run_measured,
    write_keys_csv,
    write_manifest,
)
from benchmarks.htmlreport import html_report
from benchmarks.listing import folder_listing
from benchmarks.report import Figure, at_least, at_most, info

__all__ = ["FULL", "QUICK", "SCENARIOS", "Bench", "Sizes"]


@dataclass(frozen=True)
class Sizes:
    e2e_jobs: int
    delayed_jobs: int
    job_seconds: float
    paced_jobs: dict[int, int]
    adaptive_jobs: int
    quota_jobs: int
    manifest_rows: int
    folder_objects: int
    emulator_jobs: int
    chaos_jobs: int = 3_000
    chaos_timeout: float = 600.0
    lost_seconds: float = 300.0  # how long the emulator keeps a lost answer's line silent
    shared_jobs: int = 2_000
    soak_jobs: int = 200_000


FULL = Sizes(
    e2e_jobs=20_000,
    delayed_jobs=3_000,
    job_seconds=2.0,
    paced_jobs={100: 1_500, 500: 5_000},
    adaptive_jobs=3_000,
    quota_jobs=6_000,
    manifest_rows=1_000_000,
    folder_objects=100_000,
    emulator_jobs=1_000,
)
QUICK = Sizes(
    e2e_jobs=200,
    delayed_jobs=100,
    job_seconds=0.3,
    paced_jobs={100: 60, 500: 150},
    adaptive_jobs=100,
    quota_jobs=60,
    manifest_rows=3_000,
    folder_objects=2_000,
    emulator_jobs=100,
    chaos_jobs=100,
    chaos_timeout=60.0,
    lost_seconds=0.5,  # the smoke run only exercises the harness: no 30 s read timeouts
    shared_jobs=40,
    soak_jobs=300,
)

# picjobs for scenario 1: the rate never binds; 64 requests in flight.
E2E_RATE = 100_000
E2E_CONCURRENCY = 64


@dataclass
class Bench:
    """Shared state of one benchmark run."""

    workdir: Path
    data: Path  # the emulator's data directory
    sizes: Sizes
    emulator: EmulatorProcess
    keys: list[str]
    client_cpus: set[int] | None
    progress: Callable[[str], None]
    e2e_log: RequestLog | None = None
    e2e_jobs: int = 0
    quota_log: RequestLog | None = None
    quota_jobs: int = 0
    large_manifest: Path | None = None
    large_expansion: Measured | None = None
    errors: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ running clients

    def reset(self, **settings: object) -> None:
        """Fresh emulator state and an empty output bucket, so no run overwrites the outputs
        of another (replacing a file costs the emulator more than creating one)."""
        outputs = self.data / OUTPUT_BUCKET
        shutil.rmtree(outputs, ignore_errors=True)
        outputs.mkdir(parents=True, exist_ok=True)
        self.emulator.reset(**settings)

    def run_dir(self, name: str) -> Path:
        folder = self.workdir / "runs" / name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        return folder

    def picjobs_manifest(self, name: str, jobs: int, *, rate: float, concurrency: int = 16) -> Path:
        folder = self.run_dir(name)
        csv = write_keys_csv(folder / "keys.csv", self.keys[:jobs])
        return write_manifest(
            folder / "manifest.toml", name=name, csv=csv, rate=rate, concurrency=concurrency
        )

    def picjobs(
        self, manifest: Path, *args: str, timeout: float, sample_cpu: float | None = None
    ) -> Measured:
        command = [sys.executable, "-m", "orchestrator", "run", str(manifest), *args]
        before = self.emulator.cpu_seconds()
        run = run_measured(
            command,
            env=child_env(self.emulator.url),
            cwd=manifest.parent,
            timeout=timeout,
            cpus=self.client_cpus,
            sample_cpu=sample_cpu,
        )
        run.emulator_cpu = self.emulator.cpu_seconds() - before
        return run

    def floor(self, *args: str, seconds: float) -> tuple[Measured, dict[str, Any]]:
        """`python -m benchmarks.floor ARGS`, pinned like picjobs, and the JSON line it printed
        ({} if none)."""
        command = [sys.executable, "-m", "benchmarks.floor", *args]
        before = self.emulator.cpu_seconds()
        run = run_measured(
            command,
            env=child_env(),
            cwd=REPO,
            timeout=max(30.0, 3 * seconds),
            cpus=self.client_cpus,
        )
        run.emulator_cpu = self.emulator.cpu_seconds() - before
        lines = run.stdout.strip().splitlines()
        try:
            result: dict[str, Any] = json.loads(lines[-1]) if lines else {}
        except json.JSONDecodeError:
            result = {}
        return run, result

    def baseline(self, jobs: int, *, timeout: float) -> Measured:
        folder = self.run_dir("baseline")
        keys = folder / "keys.txt"
        keys.write_text("\n".join(self.keys[:jobs]) + "\n", encoding="utf-8")
        command = [
            sys.executable,
            "-m",
            "benchmarks.baseline",
            "--keys",
            str(keys),
            "--bucket",
            BUCKET,
            "--output-bucket",
            OUTPUT_BUCKET,
            "--region",
            REGION,
            "--rule",
            RULE,
            "--port",
            str(self.emulator.port),
        ]
        before = self.emulator.cpu_seconds()
        run = run_measured(
            command, env=child_env(), cwd=REPO, timeout=timeout, cpus=self.client_cpus
        )
        run.emulator_cpu = self.emulator.cpu_seconds() - before
        return run

    def check(self, what: str, run: Measured, *, expect: int = 0) -> str:
        """'' when the run exited as expected, else a note (also kept in `errors`)."""
        if run.returncode == expect and not run.timed_out:
            return ""
        note = f"{what}: {run.describe_failure()}"
        self.errors.append(note)
        return note


def _jobs_note(bench: Bench, stats: dict[str, object], jobs: int) -> str:
    created = stats.get("jobs_created")
    duplicates = stats.get("duplicate_submissions")
    if created != jobs or duplicates:
        note = f"jobs created {created} of {jobs}, duplicates {duplicates}"
        bench.errors.append(note)
        return note
    return ""


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


# ---------------------------------------------------------------------- 1. end to end


def end_to_end(bench: Bench) -> list[Figure]:
    jobs = bench.sizes.e2e_jobs
    timeout = max(60.0, jobs / 50)

    bench.reset(rate=None)
    manifest = bench.picjobs_manifest("e2e", jobs, rate=E2E_RATE, concurrency=E2E_CONCURRENCY)
    bench.progress(f"1: picjobs, {jobs} jobs, unthrottled emulator")
    ours = bench.picjobs(manifest, timeout=timeout)
    ours_note = _join(bench.check("picjobs", ours), _jobs_note(bench, bench.emulator.stats(), jobs))
    bench.e2e_log, bench.e2e_jobs = bench.emulator.log(), jobs

    bench.reset(rate=None)
    bench.progress(f"1: baseline (official SDK, 16 threads), {jobs} jobs")
    base = bench.baseline(jobs, timeout=timeout * 4)
    base_note = _join(
        bench.check("baseline", base), _jobs_note(bench, bench.emulator.stats(), jobs)
    )

    ours_rate, base_rate = jobs / ours.wall, jobs / base.wall
    ours_cpu, base_cpu = ours.cpu / jobs * 1e6, base.cpu / jobs * 1e6
    name = f"1 end to end, {jobs:,} jobs"
    return [
        info(
            name,
            "picjobs throughput",
            ours_rate,
            "jobs/s",
            _join(
                f"{ours.wall:.1f} s wall incl. start-up",
                ours.emulator_busy,
                ours.other_load,
                ours_note,
            ),
        ),
        info(
            name,
            "baseline throughput",
            base_rate,
            "jobs/s",
            _join(f"{base.wall:.1f} s wall", base.emulator_busy, base.other_load, base_note),
        ),
        at_least(name, "throughput, picjobs / baseline", ours_rate / base_rate, 3, "x"),
        info(
            name,
            "picjobs client CPU per job",
            ours_cpu,
            "µs",
            f"user {ours.user:.1f} s + sys {ours.system:.1f} s",
        ),
        info(
            name,
            "baseline client CPU per job",
            base_cpu,
            "µs",
            f"user {base.user:.1f} s + sys {base.system:.1f} s",
        ),
        at_most(name, "CPU per job, picjobs / baseline", ours_cpu / base_cpu, 0.15, "x"),
    ]


# ---------------------------------------------------------------------- 2. tracking cost


def _tracking_per_job(log: RequestLog, jobs: int) -> tuple[float, str]:
    describe, listing = log.count("describe"), log.count("list")
    per_job = (describe + listing) / jobs
    return per_job, f"{describe} describe + {listing} list for {jobs} jobs"


def tracking_cost(bench: Bench) -> list[Figure]:
    name = "2 tracking cost"
    figures: list[Figure] = []
    if bench.e2e_log is not None:
        value, note = _tracking_per_job(bench.e2e_log, bench.e2e_jobs)
        figures.append(at_most(name, "requests/job, instant jobs (run 1)", value, 0.2, note=note))

    jobs, seconds = bench.sizes.delayed_jobs, bench.sizes.job_seconds
    bench.reset(rate=None, progression="delay", job_seconds=seconds, queue_max_concurrent=100_000)
    manifest = bench.picjobs_manifest("delayed", jobs, rate=1000)
    bench.progress(f"2: picjobs, {jobs} jobs that each run {seconds:g} s, at 1000/s")
    run = bench.picjobs(manifest, timeout=max(60.0, jobs / 20))
    note = _join(bench.check("picjobs", run), _jobs_note(bench, bench.emulator.stats(), jobs))
    value, counted = _tracking_per_job(bench.emulator.log(), jobs)
    figures.append(
        at_most(
            name,
            f"requests/job, jobs running {seconds:g} s",
            value,
            0.2,
            note=_join(counted, f"{run.wall:.1f} s wall", note),
        )
    )
    if bench.quota_log is not None:
        value, note = _tracking_per_job(bench.quota_log, bench.quota_jobs)
        figures.append(at_most(name, "requests/job, paced at 100/s (run 5)", value, 0.2, note=note))
    figures.append(
        info(name, "baseline requests/job", 1.0, note="one describe per job at least, by design")
    )
    return figures


# ---------------------------------------------------------------------- 3. rate adherence


def rate_adherence(bench: Bench) -> list[Figure]:
    figures: list[Figure] = []
    for rate, jobs in sorted(bench.sizes.paced_jobs.items()):
        burst = max(1, rate // 10)
        bench.reset(rate=rate, burst=burst)
        manifest = bench.picjobs_manifest(f"paced{rate}", jobs, rate=rate)
        bench.progress(f"3: picjobs at {rate}/s, {jobs} jobs, emulator {rate}/s burst {burst}")
        run = bench.picjobs(manifest, timeout=max(60.0, 4 * jobs / rate))
        note = _join(bench.check("picjobs", run), _jobs_note(bench, bench.emulator.stats(), jobs))
        log = bench.emulator.log().ci
        stats = bench.emulator.stats(times=True)
        achieved, span = achieved_rate(log)
        window = max_in_window(stats.get("ci_request_times", log.times), 0.1)
        name = f"3 rate adherence at {rate}/s"
        figures += [
            at_least(
                name,
                "achieved rate",
                None if achieved is None else 100 * achieved / rate,
                97,
                "%",
                _join(f"{achieved or 0:.1f} req/s over {span:.1f} s", run.other_load, note),
            ),
            at_most(name, "429 answers", log.count(status=429), 0, note=f"of {len(log.times)}"),
            at_most(name, "most requests in any 100 ms", window, rate // 10 + 1),
        ]
    return figures


# ---------------------------------------------------------------------- 4. adaptive rate


def adaptive_rate(bench: Bench) -> list[Figure]:
    jobs = bench.sizes.adaptive_jobs
    bench.reset(rate=100, burst=10)
    manifest = bench.picjobs_manifest("adaptive", jobs, rate=300)
    bench.progress(f"4: picjobs at 300/s against an emulator enforcing 100/s, {jobs} jobs")
    run = bench.picjobs(manifest, timeout=max(90.0, jobs / 10))
    note = _join(bench.check("picjobs", run), _jobs_note(bench, bench.emulator.stats(), jobs))
    log = bench.emulator.log().ci
    refused = log.count(status=429)
    share = 100 * refused / len(log.times) if log.times else None
    achieved, span = achieved_rate(log)
    submits = log.times_of("submit", exclude_status=429)
    job_rate = (len(submits) - 1) / span if span else 0.0
    name = "4 adaptive, 300/s vs 100/s"
    return [
        at_most(
            name,
            "429 share of answers",
            share,
            5,
            "%",
            _join(f"{refused} of {len(log.times)}", note),
        ),
        at_least(
            name,
            "achieved accepted rate",
            achieved,
            90,
            "req/s",
            _join(f"{job_rate:.1f} jobs/s over {span:.1f} s", run.other_load),
        ),
    ]


# ---------------------------------------------------------------------- 5. CPU at CI's quota


def _floor_figures(
    bench: Bench, name: str, what: str, per: str, run: Measured, result: dict[str, Any]
) -> list[Figure]:
    """% of a core and µs per wake-up or request of one `benchmarks.floor` run, from its own
    getrusage around the timed part (the process's rusage, start-up included, in the note)."""
    note = bench.check(what, run)
    cpu, wall, count = result.get("cpu"), result.get("wall"), result.get("count")
    if not (cpu is not None and wall and count):
        return [
            info(name, f"{what}: CPU", None, "% of a core", _join("no result", note)),
            info(name, f"{what}: CPU per {per}", None, "µs"),
        ]
    answers = result.get("answers")
    return [
        info(
            name,
            f"{what}: CPU",
            100 * cpu / wall,
            "% of a core",
            _join(
                f"{cpu:.2f} s CPU over {wall:.1f} s, in-process getrusage of the timed part "
                f"(whole process incl. start-up {run.cpu:.2f} s)",
                f"answers {answers}" if answers else "",
                run.other_load,
                note,
            ),
        ),
        info(
            name,
            f"{what}: CPU per {per}",
            cpu / count * 1e6,
            "µs",
            f"user {result.get('user', 0):.2f} s + sys {result.get('system', 0):.2f} s",
        ),
    ]


def cpu_at_quota(bench: Bench) -> list[Figure]:
    jobs = bench.sizes.quota_jobs
    seconds = jobs / 100
    bench.reset(rate=100, burst=10)
    manifest = bench.picjobs_manifest("quota", jobs, rate=100)
    bench.progress(f"5: picjobs at 100/s, {jobs} jobs (about {seconds:.0f} s)")
    run = bench.picjobs(
        manifest, timeout=max(60.0, 3 * seconds), sample_cpu=min(0.5, max(0.05, seconds / 50))
    )
    note = _join(bench.check("picjobs", run), _jobs_note(bench, bench.emulator.stats(), jobs))
    bench.quota_log, bench.quota_jobs = bench.emulator.log(), jobs
    ci = bench.quota_log.ci.times
    steady = cpu_between(run.cpu_samples, min(ci), max(ci)) if ci else None

    bench.progress(f"5: floor, an idle asyncio loop waking 200 times a second for {seconds:.0f} s")
    wake = bench.floor("--mode", "wake", "--rate", "200", "--count", str(2 * jobs), seconds=seconds)
    bench.progress(f"5: floor, bare aiohttp POSTs at 100/s, {jobs} requests")
    http = bench.floor(
        "--mode",
        "http",
        "--rate",
        "100",
        "--count",
        str(jobs),
        "--url",
        bench.emulator.url + "/_bench/floor",  # a 404 from the launcher: no job, no log entry
        seconds=seconds,
    )
    name = "5 CPU at 100 jobs/s"
    steady_share = None if steady is None else 100 * steady[0] / steady[1]
    floor_share = _share(http[1])
    return [
        info(
            name,
            "client CPU",
            100 * run.cpu / run.wall,
            "% of a core",
            _join(
                f"{run.cpu:.2f} s CPU over {run.wall:.1f} s for {jobs} jobs", run.other_load, note
            ),
        ),
        info(name, "client CPU per job", run.cpu / jobs * 1e6, "µs"),
        info(
            name,
            "client CPU, steady state",
            steady_share,
            "% of a core",
            "no /proc samples between the first and the last CI request"
            if steady is None
            else f"{steady[0]:.2f} s CPU over {steady[1]:.1f} s between the first and the last "
            "CI request (/proc/<pid>/stat samples)",
        ),
        *_floor_figures(bench, name, "floor, asyncio loop waking 200/s", "wake-up", *wake),
        *_floor_figures(bench, name, "floor, bare aiohttp at 100 req/s", "request", *http),
        at_most(
            name,
            "steady state / bare aiohttp floor",
            None if steady_share is None or not floor_share else steady_share / floor_share,
            1.5,
            "x",
            "both measured in this run, on the same CPU",
        ),
    ]


def _share(result: dict[str, Any]) -> float | None:
    """% of a core of one `benchmarks.floor` run's timed part, None without a result."""
    cpu, wall = result.get("cpu"), result.get("wall")
    return None if cpu is None or not wall else 100 * cpu / wall


# ---------------------------------------------------------------------- 6 and 7. large manifests


def _large_manifest(bench: Bench) -> Path:
    if bench.large_manifest is not None:
        return bench.large_manifest
    rows = bench.sizes.manifest_rows
    folder = bench.run_dir("large")
    with (folder / "keys.csv").open("w", encoding="utf-8") as out:
        out.write("key\n")
        for i in range(rows):
            out.write(f"photos/{i // 10_000:03d}/{i % 100:02d}/img-{i:07d}.jpg\n")
    bench.large_manifest = write_manifest(
        folder / "manifest.toml", name="large", csv=folder / "keys.csv", rate=100
    )
    return bench.large_manifest


def _ledger_path(manifest: Path) -> Path:
    return manifest.parent / ".picjobs" / "large.sqlite"


def _expand_two_jobs(bench: Bench) -> tuple[Measured, int]:
    """The same expansion with two `[[job]]` tables: two items per row, one CSV read.
    Returns the run and how many items its ledger holds."""
    csv = _large_manifest(bench).parent / "keys.csv"
    manifest = write_manifest(
        csv.parent / "large2.toml",
        name="large2",
        csv=csv,
        rate=100,
        second_output="w/{dir}/{stem}.webp",
    )
    bench.reset()
    bench.emulator.pause_queue()
    rows = bench.sizes.manifest_rows
    bench.progress(f"6: expanding the {rows:,}-row CSV with two jobs ({2 * rows:,} items)")
    run = bench.picjobs(manifest, timeout=max(60.0, 600.0 * rows / 1_000_000))
    ledger = manifest.parent / ".picjobs" / "large2.sqlite"
    stored = sum(ledger_counts(ledger).values()) if ledger.exists() else 0
    return run, stored


def _expand(bench: Bench) -> Measured:
    """A real `picjobs run` over the large CSV that stops after expansion: the queue is
    paused, so resolving it refuses to go on (exit 2) once every row is in the ledger."""
    if bench.large_expansion is not None:
        return bench.large_expansion
    manifest = _large_manifest(bench)
    bench.reset()
    bench.emulator.pause_queue()
    rows = bench.sizes.manifest_rows
    bench.progress(f"6: expanding a {rows:,}-row CSV into the ledger")
    # Twenty times the target: scenario 7 needs the whole ledger, so let it finish.
    bench.large_expansion = bench.picjobs(manifest, timeout=max(60.0, 300.0 * rows / 1_000_000))
    return bench.large_expansion


SHARD = "3/8"


def _expand_one_shard(bench: Bench) -> Measured:
    """The same expansion as shard 3 of 8, into its own ledger, stopped the same way."""
    manifest = _large_manifest(bench)
    for stale in manifest.parent.joinpath(".picjobs").glob("large.shard-*"):
        stale.unlink()
    bench.reset()
    bench.emulator.pause_queue()
    bench.progress(f"6: expanding shard {SHARD} of the {bench.sizes.manifest_rows:,}-row CSV")
    rows = bench.sizes.manifest_rows
    return bench.picjobs(manifest, "--shard", SHARD, timeout=max(60.0, 300.0 * rows / 1_000_000))


def _dry_run_timeout(rows: int) -> float:
    """Eight times the expansion target: enough to see the peak RSS, bounded in time."""
    return max(60.0, 120.0 * rows / 1_000_000)


def _finish_every_item(ledger: Path) -> None:
    """Set-up for a resume: every item final, as after a completed run (direct SQL)."""
    with sqlite3.connect(ledger) as conn:
        conn.execute(
            "UPDATE items SET state = 'success', job_id = 'cbench' || rowid, attempts = 1, "
            "submitted_at = updated_at, finished_at = updated_at WHERE state != 'success'"
        )


def large_manifests(bench: Bench) -> list[Figure]:
    rows = bench.sizes.manifest_rows
    expansion = _expand(bench)
    ledger = _ledger_path(_large_manifest(bench))
    counts = ledger_counts(ledger) if ledger.exists() else {}
    stored = sum(counts.values())
    note = bench.check("expansion run", expansion, expect=2)
    if stored != rows:
        short = f"expansion: {stored:,} of {rows:,} rows in the ledger"
        bench.errors.append(short)
        note = _join(note, short)
    expanded_at = expansion.first_line_time("expanded:")
    how = "process start to the 'expanded:' log line"
    if expanded_at is None:  # stopped before expanding everything: the time so far
        expanded_at, how = expansion.wall, "no 'expanded:' line; wall time until stopped"
    _finish_every_item(ledger)
    shard = _expand_one_shard(bench)
    shard_at = shard.first_line_time("expanded:")
    shard_note = bench.check("shard expansion run", shard, expect=2)

    manifest = _large_manifest(bench)
    bench.reset()
    bench.progress(f"6: run --dry-run over the {rows:,}-row CSV (ledger all final)")
    dry = bench.picjobs(manifest, "--dry-run", timeout=_dry_run_timeout(rows))
    dry_note = bench.check("dry run", dry)
    name = f"6 large manifest, {rows:,} rows"
    two, two_stored = _expand_two_jobs(bench)
    two_note = bench.check("two-job expansion run", two, expect=2)
    if two_stored != 2 * rows:
        short = f"two-job expansion: {two_stored:,} of {2 * rows:,} items in the ledger"
        bench.errors.append(short)
        two_note = _join(two_note, short)
    two_at = two.first_line_time("expanded:")
    if two_at is None:
        two_at = two.wall
        two_note = _join("no 'expanded:' line; wall time until stopped", two_note)
    return [
        at_most(
            name,
            "expansion into the ledger, time",
            expanded_at,
            15,
            "s",
            _join(how, f"{rows / expanded_at:,.0f} rows/s", expansion.other_load, note),
        ),
        at_most(name, "expansion into the ledger, peak RSS", expansion.max_rss_mib, 100, "MiB"),
        at_most(
            name,
            f"expansion of shard {SHARD} (reads every row, keeps its own), time",
            shard_at,
            expanded_at,
            "s",
            _join(
                "no more than the unsharded expansion above",
                shard.other_load,
                shard_note or ("" if shard_at is not None else "no 'expanded:' line"),
            ),
        ),
        at_most(
            name,
            "run --dry-run, peak RSS",
            dry.max_rss_mib,
            100,
            "MiB",
            _join(dry.other_load, dry_note),
        ),
        info(
            name,
            "run --dry-run, wall time",
            dry.wall,
            "s",
            "no target; stopped at the time limit" if dry.timed_out else "no target",
        ),
        at_most(
            name,
            "expansion with two jobs, time",
            two_at,
            2 * expanded_at,
            "s",
            _join(
                f"target: twice the one-job time; {two_at / expanded_at:.2f}x",
                f"{2 * rows / two_at:,.0f} items/s",
                two.other_load,
                two_note,
            ),
        ),
        at_most(name, "expansion with two jobs, peak RSS", two.max_rss_mib, 100, "MiB"),
    ]


def resume(bench: Bench) -> list[Figure]:
    rows = bench.sizes.manifest_rows
    manifest = _large_manifest(bench)
    ledger = _ledger_path(manifest)
    if bench.large_expansion is None:
        _expand(bench)
        _finish_every_item(ledger)
    stored = sum(ledger_counts(ledger).values()) if ledger.exists() else 0
    name = f"7 resume, {rows:,} final items"
    if stored != rows:
        why = f"not run: the expansion left {stored:,} of {rows:,} rows in the ledger"
        return [
            at_most(name, "wall time", None, 5, "s", why),
            at_most(name, "HTTP requests", None, 0, note=why),
        ]
    bench.reset()
    bench.progress(f"7: second run over a {rows:,}-item ledger, every item final")
    run = bench.picjobs(manifest, timeout=60.0)
    note = bench.check("resume run", run)
    done = ledger_counts(ledger).get("success", 0)
    if done != rows:
        short = f"resume: {done:,} of {rows:,} items final after the run"
        bench.errors.append(short)
        note = _join(note, short)
    if run.first_line_time("skipping expansion") is not None:
        note = _join("expansion skipped (CSV unchanged)", note)
    requests = sum(bench.emulator.stats()["requests"].values())
    return [
        at_most(
            name,
            "wall time",
            run.wall,
            5,
            "s",
            _join(f"peak RSS {run.max_rss_mib:.0f} MiB", run.other_load, note),
        ),
        at_most(name, "HTTP requests", requests, 0),
    ]


def _soak(bench: Bench) -> list[Figure]:
    from benchmarks.soak import soak  # it builds on this module's Bench

    return soak(bench)


def _skip_existing(bench: Bench) -> list[Figure]:
    from benchmarks.skipping import skip_existing  # it builds on this module's scenario 6

    return skip_existing(bench)


SCENARIOS: dict[int, Callable[[Bench], list[Figure]]] = {
    1: end_to_end,
    5: cpu_at_quota,  # before 2, which reuses its request log
    2: tracking_cost,
    3: rate_adherence,
    4: adaptive_rate,
    6: large_manifests,
    7: resume,
    10: _soak,
    11: html_report,
    12: folder_listing,
    13: emulator_cpu,
    14: _skip_existing,
}
