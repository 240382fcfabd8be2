"""`python -m benchmarks [--quick] [--only 1,3] [--json FILE] [--keep] [--strict]`.

Starts one emulator process, seeds its bucket, runs the selected scenarios in order and prints
the machine, the command and one table: scenario, figure, value, target, pass/FAIL.
Exit status: 1 if a scenario could not run (a harness error), or with `--strict` if a target
was missed or a client run ended badly; else 0.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import EmulatorProcess, compile_sources, cpu_sets, seed_objects
from benchmarks.report import Figure, machine, render_table
from benchmarks.scenarios import FULL, QUICK, SCENARIOS, Bench, Sizes

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="picjobs benchmarks, side by side with the official SDK.",
    )
    parser.add_argument("--quick", action="store_true", help="smoke size: seconds, not minutes")
    parser.add_argument(
        "--only", default="", help="comma-separated scenario numbers (default: all)"
    )
    parser.add_argument(
        "--workdir", type=Path, help="manifests and ledgers (default: a temporary directory)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a target is missed or a run failed"
    )
    return parser


def _selected(only: str) -> list[int]:
    if not only.strip():
        return sorted(SCENARIOS)
    wanted = {int(part) for part in only.split(",") if part.strip()}
    unknown = wanted - set(SCENARIOS)
    if unknown:
        raise SystemExit(
            f"no scenario {', '.join(map(str, sorted(unknown)))}; there are {', '.join(map(str, sorted(SCENARIOS)))}"
        )
    return sorted(wanted)


def _objects_needed(sizes: Sizes) -> int:
    return max(
        sizes.e2e_jobs,
        sizes.delayed_jobs,
        sizes.adaptive_jobs,
        sizes.quota_jobs,
        *sizes.paced_jobs.values(),
    )


def _emulator_data(workdir: Path) -> tuple[Path, bool]:
    """The emulator's bucket folders: on tmpfs when there is one, so that the local disk's
    journal is not on the emulated service's path; the ledgers stay on the real disk.
    Returns the folder and whether it is temporary (outside the work directory)."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return Path(tempfile.mkdtemp(prefix="picjobs-bench-", dir=shm)), True
    return workdir / "data", False


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    selected = _selected(args.only)
    sizes = QUICK if args.quick else FULL
    started = time.monotonic()
    load_before = os.getloadavg()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="picjobs-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    client_cpus, emulator_cpu = cpu_sets()
    figures: dict[int, list[Figure]] = {}
    harness_errors: list[str] = []
    run_errors: list[str] = []
    data, data_is_temporary = _emulator_data(workdir)
    try:
        if not compile_sources():
            progress("compileall: some sources did not compile; children compile those")
        count = _objects_needed(sizes)
        progress(f"seeding {count:,} input objects in {data}")
        keys = seed_objects(data, count)
        with EmulatorProcess(data, cpu=emulator_cpu) as emulator:
            progress(f"emulator at {emulator.url}")
            bench = Bench(workdir, data, sizes, emulator, keys, client_cpus, progress)
            for number, scenario in SCENARIOS.items():
                if number not in selected:
                    continue
                try:
                    figures[number] = scenario(bench)
                except Exception as exc:  # one broken scenario must not hide the others
                    message = f"scenario {number}: {type(exc).__name__}: {exc}"
                    harness_errors.append(message)
                    progress(message)
                    figures[number] = [Figure(str(number), "could not run", None, note=message)]
            run_errors = bench.errors
    finally:
        if data_is_temporary:
            shutil.rmtree(data, ignore_errors=True)
        if args.keep:
            progress(f"work directory kept: {workdir}")
        elif args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    progress("done")

    ordered = [f for number in sorted(figures) for f in figures[number]]
    command = "python -m benchmarks" + "".join(f" {shlex.quote(a)}" for a in (argv or sys.argv[1:]))
    about = machine()
    print(f"# picjobs benchmarks ({'quick' if args.quick else 'full'} size)\n")
    print(f"command: `{command}`, {time.monotonic() - started:.0f} s\n")
    for key, value in about.items():
        print(f"- {key}: {value}")
    pinning = (
        f"clients on CPU {sorted(client_cpus)}, emulator on CPU {emulator_cpu}"
        if client_cpus
        else "no CPU pinning (one CPU)"
    )
    print(f"- pinning: {pinning}; emulator data in {'tmpfs' if data_is_temporary else workdir}")
    load_after = os.getloadavg()
    print(f"- load average (1 min) at start / end: {load_before[0]:.2f} / {load_after[0]:.2f}\n")
    print(render_table(ordered))
    missed = [f for f in ordered if f.passed is False]
    print(f"\n{sum(f.passed is True for f in ordered)} targets met, {len(missed)} missed")
    for error in harness_errors + run_errors:
        print(f"error: {error}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "command": command,
                    "machine": about,
                    "figures": [f.as_json() for f in ordered],
                    "harness_errors": harness_errors,
                    "run_errors": run_errors,
                },
                indent=2,
                ensure_ascii=False,
            ),
            encoding="utf-8",
        )
    if harness_errors or (args.strict and (missed or run_errors)):
        sys.exit(1)
