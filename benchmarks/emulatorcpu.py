"""Scenario 13: the emulator's CPU per job on its default path.

`picjobs emulator` runs as it is started by hand (default flags but a free port and the bucket
name; signatures checked; instant jobs; not the benchmarks' `--cache-images`, only what the
emulator remembers by itself: the image work of inputs of up to 64 KiB, by their bytes and the
rule), its data on the ordinary disk beside the work directory, not on tmpfs. `picjobs run` then submits `Sizes.emulator_jobs` jobs of 4x4
JPEGs through it, unthrottled. The figure is the emulator process's own CPU (user + system from
/proc, not wall time: the machine may be busy) over the run, divided by the jobs.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.harness import (
    BUCKET,
    OUTPUT_BUCKET,
    child_env,
    process_cpu_seconds,
    run_measured,
    write_keys_csv,
    write_manifest,
)
from benchmarks.report import Figure, at_most, info

if TYPE_CHECKING:
    from benchmarks.scenarios import Bench

__all__ = ["emulator_cpu", "seed_jpegs", "start_emulator"]

TARGET_MS = 2.0
_ENDPOINT = re.compile(r'endpoint = "(http://[^"]+)"')


def _tiny_jpeg() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (30, 120, 200)).save(buf, "JPEG")
    return buf.getvalue()


def seed_jpegs(data: Path, count: int) -> list[str]:
    """`count` 4x4 JPEGs (one file, hard-linked) in the benchmark bucket under `data`."""
    bucket = data / BUCKET
    (data / OUTPUT_BUCKET).mkdir(parents=True, exist_ok=True)
    original = data / "tiny.jpg"
    original.write_bytes(_tiny_jpeg())
    keys = [f"jpg/{i // 1000:03d}/{i:06d}.jpg" for i in range(count)]
    for key in keys:
        path = bucket / key
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(original, path)
        except OSError:
            path.write_bytes(original.read_bytes())
    return keys


def _user_system(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a live process (Linux /proc); zeros if unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def start_emulator(data: Path, cpu: int | None) -> tuple[subprocess.Popen[str], str]:
    """`picjobs emulator` on a free port; the process and its URL once it listens."""
    command = [sys.executable, "-m", "orchestrator", "emulator"]
    command += ["--data", str(data), "--bucket", BUCKET, "--port", "0"]
    proc = subprocess.Popen(
        command,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(proc.pid, {cpu})
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    for line in proc.stdout:
        found = _ENDPOINT.search(line)
        if found:
            # keep draining its stdout so that it never blocks on a full pipe
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            return proc, found.group(1)
        if time.monotonic() > deadline:
            break
    proc.kill()
    proc.wait()
    raise RuntimeError("picjobs emulator did not print its endpoint line")


def emulator_cpu(bench: Bench) -> list[Figure]:
    jobs = bench.sizes.emulator_jobs
    folder = bench.run_dir("emulator-cpu")
    data = folder / "data"  # the ordinary disk, as `picjobs emulator --data .` would be
    bench.progress(f"13: picjobs emulator (default path), {jobs} jobs of 4x4 JPEGs")
    keys = seed_jpegs(data, jobs)
    proc, url = start_emulator(data, bench.emulator.cpu)
    try:
        csv = write_keys_csv(folder / "keys.csv", keys)
        manifest = write_manifest(
            folder / "manifest.toml", name="emucpu", csv=csv, rate=100_000, concurrency=64
        )
        time.sleep(0.5)  # let its start-up work settle before the first reading
        before = process_cpu_seconds(proc.pid)
        user_before, system_before = _user_system(proc.pid)
        run = run_measured(
            [sys.executable, "-m", "orchestrator", "run", str(manifest)],
            env=child_env(url),
            cwd=folder,
            timeout=max(120.0, jobs / 5),
            cpus=bench.client_cpus,
        )
        after = process_cpu_seconds(proc.pid)
        user_after, system_after = _user_system(proc.pid)
        if before is not None and after is not None:
            run.emulator_cpu = after - before
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(data, ignore_errors=True)
    note = bench.check("picjobs", run)
    used = None if before is None or after is None else after - before
    per_job = None if used is None else used / jobs * 1000
    name = f"13 emulator CPU per job, {jobs:,} jobs"
    return [
        at_most(
            name,
            "emulator CPU per job",
            per_job,
            TARGET_MS,
            "ms",
            "; ".join(
                n
                for n in (
                    f"{used:.2f} s of emulator CPU (user {user_after - user_before:.2f} s, "
                    f"system {system_after - system_before:.2f} s)"
                    if used is not None
                    else "",
                    run.other_load,
                    note,
                )
                if n
            ),
        ),
        info(name, "jobs/s (client run)", jobs / run.wall, "jobs/s", f"{run.wall:.1f} s wall"),
    ]
