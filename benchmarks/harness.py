"""What every scenario uses: measured child processes, the emulator process, inputs, analysis.

Every client (picjobs or the baseline) runs as a child process of its own, so its CPU time is the
kernel's rusage of that child (`os.wait4`) and its peak RSS is the child's `ru_maxrss`. The
emulator runs in another child, pinned to the last CPU when there are several; clients run on
the others.
"""

from __future__ import annotations

import bisect
import compileall
import contextlib
import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BUCKET",
    "OUTPUT_BUCKET",
    "REGION",
    "REPO",
    "RULE",
    "EmulatorProcess",
    "Measured",
    "RequestLog",
    "achieved_rate",
    "child_env",
    "compile_sources",
    "cpu_between",
    "cpu_sets",
    "ledger_counts",
    "max_in_window",
    "object_key",
    "process_cpu_seconds",
    "process_rss_kib",
    "run_measured",
    "seed_objects",
    "system_busy_seconds",
    "write_keys_csv",
    "write_manifest",
]

REPO = Path(__file__).resolve().parent.parent
BUCKET = "bench-1250000000"
OUTPUT_BUCKET = "benchout-1250000000"
REGION = "ap-guangzhou"
SECRET_ID = "AKIDbenchmark00000000000000000000000"
SECRET_KEY = "benchmarkSecretKey00000000000000"
RULE = "imageMogr2/rotate/90"


def cpu_sets() -> tuple[set[int] | None, int | None]:
    """CPUs for clients and the CPU for the emulator; no pinning on a single CPU."""
    if not hasattr(os, "sched_getaffinity"):
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    return set(cpus[:-1]), cpus[-1]


def child_env(endpoint: str | None = None) -> dict[str, str]:
    """The environment of a child: this checkout first on the path, the benchmark credentials."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env["COS_SECRET_ID"] = SECRET_ID
    env["COS_SECRET_KEY"] = SECRET_KEY
    env.pop("COS_SECURITY_TOKEN", None)
    env.pop("PICJOBS_ENDPOINT", None)
    if endpoint is not None:
        env["PICJOBS_ENDPOINT"] = endpoint
    env["PYTHONUNBUFFERED"] = "1"
    # With it a child still reads the .pyc of compile_sources, but would not cache what that
    # missed (a file edited meanwhile), and every later child would compile it again.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def compile_sources() -> bool:
    """Bytecode for this checkout's packages, as `pip install` writes it for an installed
    package, so that no measured child compiles sources at start-up. False if a file failed."""
    return all(
        compileall.compile_dir(REPO / package, quiet=2)
        for package in ("orchestrator", "benchmarks")
    )


# ---------------------------------------------------------------------- measured children


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU a live process has used so far (Linux /proc), None if unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_rss_kib(pid: int) -> int | None:
    """Resident set size of a live process now, in KiB (Linux /proc), None if unreadable."""
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def process_hwm_kib(pid: int) -> int | None:
    """Peak resident set size of a live process's own memory since its exec (VmHWM), in KiB."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return None


def system_busy_seconds() -> float:
    """CPU time every process on the machine has used since boot (Linux /proc/stat)."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = stat.readline().split()
    except OSError:
        return 0.0
    # user nice system idle iowait irq softirq steal ...: everything but idle and iowait
    busy = sum(int(v) for i, v in enumerate(fields[1:9]) if i not in (3, 4))
    return busy / os.sysconf("SC_CLK_TCK")


@dataclass
class Measured:
    """How a child process went: exit code, wall time, CPU (user + sys), peak RSS, output."""

    command: Sequence[str]
    returncode: int
    wall: float
    user: float
    system: float
    max_rss_kib: int
    stdout: str
    stderr_lines: list[tuple[float, str]] = field(default_factory=list)
    timed_out: bool = False
    emulator_cpu: float = 0.0  # CPU the emulator spent meanwhile, when measured
    machine_cpu: float = 0.0  # CPU every process on the machine spent meanwhile
    # (time.monotonic(), CPU seconds so far) while it ran, with run_measured(sample_cpu=...)
    cpu_samples: list[tuple[float, float]] = field(default_factory=list)
    # (time.monotonic(), resident KiB) at the same moments, when /proc answered
    rss_samples: list[tuple[float, int]] = field(default_factory=list)

    @property
    def cpu(self) -> float:
        return self.user + self.system

    @property
    def max_rss_mib(self) -> float:
        return self.max_rss_kib / 1024

    @property
    def stderr(self) -> str:
        return "\n".join(line for _, line in self.stderr_lines)

    def first_line_time(self, needle: str) -> float | None:
        """Seconds from the start to the first stderr line containing `needle`."""
        return next((t for t, line in self.stderr_lines if needle in line), None)

    @property
    def emulator_busy(self) -> str:
        """The emulator's CPU over this run's wall time, as a note."""
        return f"emulator busy {100 * self.emulator_cpu / self.wall:.0f} % of its CPU"

    @property
    def other_load(self) -> str:
        """CPU used meanwhile by processes other than this client and the emulator."""
        other = max(0.0, self.machine_cpu - self.cpu - self.emulator_cpu)
        return f"other processes {100 * other / self.wall:.0f} % of a CPU"

    def describe_failure(self) -> str:
        how = f"stopped after {self.wall:.0f} s" if self.timed_out else f"exit {self.returncode}"
        lines = [line for line in (self.stderr or self.stdout).strip().splitlines() if line]
        last = lines[-1] if lines and not self.timed_out else ""
        return f"{how}: {last[:160]}" if last else how


def run_measured(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    timeout: float,
    cpus: set[int] | None = None,
    sample_cpu: float | None = None,
) -> Measured:
    """Run `command` to its end (or `timeout`, then SIGTERM and SIGKILL) and measure it;
    with `sample_cpu`, also read its CPU and RSS from /proc every that many seconds."""
    started = time.monotonic()
    machine_before = system_busy_seconds()
    # A child's ru_maxrss starts at about this process's own peak: Linux carries the peak of the
    # memory an exec replaces over to the new program. Well past that peak it is the child's
    # own; near it, only /proc's VmHWM, read while the child lives, says what the child used.
    own_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    proc = subprocess.Popen(
        list(command),
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if cpus is not None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(proc.pid, cpus)
    out: list[str] = []
    lines: list[tuple[float, str]] = []
    assert proc.stdout is not None and proc.stderr is not None
    stdout, stderr = proc.stdout, proc.stderr

    def read_out() -> None:
        out.append(stdout.read())

    def read_err() -> None:
        for text in stderr:
            lines.append((time.monotonic() - started, text.rstrip("\n")))

    result: list[tuple[int, Any, float]] = []
    reaped = threading.Event()
    peak = [0]

    def watch_peak() -> None:
        while not reaped.is_set():
            seen = process_hwm_kib(proc.pid)
            if seen is None:
                return
            peak[0] = max(peak[0], seen)
            reaped.wait(0.05)

    samples: list[tuple[float, float]] = []
    rss: list[tuple[float, int]] = []

    def reap() -> None:
        _, status, usage = os.wait4(proc.pid, 0)
        result.append((status, usage, time.monotonic()))
        reaped.set()

    def sample(every: float) -> None:
        while True:
            cpu = process_cpu_seconds(proc.pid)
            if cpu is None or reaped.is_set():
                return
            now = time.monotonic()
            samples.append((now, cpu))
            resident = process_rss_kib(proc.pid)
            if resident is not None:
                rss.append((now, resident))
            if reaped.wait(every):
                return

    readers = [threading.Thread(target=f, daemon=True) for f in (read_out, read_err, watch_peak)]
    if sample_cpu is not None:
        readers.append(threading.Thread(target=sample, args=(sample_cpu,), daemon=True))
    waiter = threading.Thread(target=reap, daemon=True)
    for thread in (*readers, waiter):
        thread.start()
    waiter.join(timeout)
    timed_out = waiter.is_alive()
    if timed_out:
        proc.send_signal(signal.SIGTERM)
        waiter.join(5)
        if waiter.is_alive():
            proc.kill()
            waiter.join()
    for thread in readers:
        thread.join(10)
    status, usage, ended = result[0]
    proc.returncode = os.waitstatus_to_exitcode(status)
    stdout.close()
    stderr.close()
    return Measured(
        command=list(command),
        returncode=proc.returncode,
        wall=ended - started,
        user=usage.ru_utime,
        system=usage.ru_stime,
        max_rss_kib=peak[0] if peak[0] and usage.ru_maxrss <= own_peak * 1.1 else usage.ru_maxrss,
        stdout="".join(out),
        stderr_lines=lines,
        timed_out=timed_out,
        machine_cpu=system_busy_seconds() - machine_before,
        cpu_samples=samples,
        rss_samples=rss,
    )


# ---------------------------------------------------------------------- the emulator process


@dataclass
class RequestLog:
    """Every request the emulator answered since its last reset (see benchmarks/serve.py)."""

    times: list[float]
    ops: list[str]
    statuses: list[int]

    def count(self, op: str | None = None, status: int | None = None) -> int:
        return sum(
            1
            for o, s in zip(self.ops, self.statuses, strict=True)
            if (op is None or o == op) and (status is None or s == status)
        )

    def times_of(self, op: str | None = None, exclude_status: int | None = None) -> list[float]:
        return [
            t
            for t, o, s in zip(self.times, self.ops, self.statuses, strict=True)
            if (op is None or o == op) and (exclude_status is None or s != exclude_status)
        ]

    @property
    def ci(self) -> RequestLog:
        keep = [i for i, op in enumerate(self.ops) if op != "cos"]
        return RequestLog(
            [self.times[i] for i in keep],
            [self.ops[i] for i in keep],
            [self.statuses[i] for i in keep],
        )


class EmulatorProcess:
    """`python -m benchmarks.serve` in a child process, with its control routes at hand."""

    def __init__(
        self,
        data_dir: Path,
        *,
        cpu: int | None = None,
        cache_images: bool = True,
        startup_timeout: float = 30.0,
    ) -> None:
        command = [
            sys.executable,
            "-m",
            "benchmarks.serve",
            "--data",
            str(data_dir),
            "--bucket",
            BUCKET,
            "--region",
            REGION,
        ]
        self.cpu = cpu
        if cpu is not None:
            command += ["--cpu", str(cpu)]
        if cache_images:
            command.append("--cache-images")
        self.proc = subprocess.Popen(
            command,
            env=child_env(),
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        ready: list[str] = []
        assert self.proc.stdout is not None
        stdout = self.proc.stdout
        reader = threading.Thread(target=lambda: ready.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(startup_timeout)
        if not ready or not ready[0].strip():
            self.close()
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise RuntimeError(f"the emulator did not start: {err.strip()[-500:]}")
        info = json.loads(ready[0])
        self.url: str = info["url"]
        self.port: int = int(info["port"])

    def _call(self, method: str, path: str, payload: object | None = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            return json.load(answer)

    def reset(self, **settings: object) -> None:
        """Fresh start (jobs, stats, request log), then apply `settings` (see /_emulator/config)."""
        self._call("POST", "/_emulator/reset", {})
        if settings:
            self._call("POST", "/_emulator/config", settings)

    def set_faults(self, **config: object) -> None:
        """Replace the fault configuration (see `orchestrator.emulator.faults.FaultConfig`)."""
        self._call("POST", "/_emulator/faults", config)

    def stats(self, *, times: bool = False) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "GET", "/_emulator/stats" + ("?times=1" if times else "")
        )
        return result

    def log(self) -> RequestLog:
        data = self._call("GET", "/_bench/log")
        return RequestLog(data["t"], data["op"], data["status"])

    def cpu_seconds(self) -> float:
        """User + system CPU the emulator process has used so far (Linux /proc)."""
        return process_cpu_seconds(self.proc.pid) or 0.0

    def pause_queue(self) -> None:
        self._call("POST", "/_bench/pause", {})

    def index_objects(self, bucket: str, keys_file: Path) -> int:
        """Make every key of `keys_file` an object of `bucket`, without files (until reset)."""
        answer = self._call(
            "POST", "/_bench/index", {"bucket": bucket, "keys_file": str(keys_file)}
        )
        return int(answer["objects"])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# ---------------------------------------------------------------------- inputs


def _tiny_png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def object_key(index: int) -> str:
    return f"img/{index // 1000:03d}/{index:07d}.png"


def seed_objects(data_dir: Path, count: int) -> list[str]:
    """`count` input objects in the bucket folder: one tiny PNG, hard-linked (copied if not)."""
    bucket = data_dir / BUCKET
    bucket.mkdir(parents=True, exist_ok=True)
    (data_dir / OUTPUT_BUCKET).mkdir(parents=True, exist_ok=True)
    original = data_dir / "tiny.png"
    if not original.exists():
        original.write_bytes(_tiny_png())
    keys = [object_key(i) for i in range(count)]
    for key in keys:
        path = bucket / key
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(original, path)
        except OSError:
            path.write_bytes(original.read_bytes())
    return keys


def write_keys_csv(path: Path, keys: Iterable[str]) -> Path:
    with path.open("w", encoding="utf-8") as out:
        out.write("key\n")
        for key in keys:
            out.write(key + "\n")
    return path


def write_manifest(
    path: Path,
    *,
    name: str,
    csv: Path,
    rate: float,
    concurrency: int = 16,
    output: str = "o/{key}",
    second_output: str | None = None,
    skip_existing: str = "false",
) -> Path:
    """A CSV manifest whose jobs rotate each input into the output bucket; with
    `second_output`, two `[[job]]` tables (two outputs per object)."""
    tables = (
        [("", output)] if second_output is None else [("first", output), ("second", second_output)]
    )
    job = "\n".join(
        ("[job]\n" if not job_name else f'[[job]]\nname = "{job_name}"\n')
        + f'process_rule = "{RULE}"\noutput = "{job_output}"\noutput_bucket = "{OUTPUT_BUCKET}"\n'
        + f"skip_existing = {skip_existing}\n"
        for job_name, job_output in tables
    )
    path.write_text(
        textwrap.dedent(
            f"""\
            name = "{name}"

            [target]
            bucket = "{BUCKET}"
            region = "{REGION}"

            [source]
            csv = "{csv.name}"

            JOBS
            [limits]
            rate = {rate:g}
            concurrency = {concurrency}
            """
        ).replace("JOBS\n", job + "\n"),
        encoding="utf-8",
    )
    return path


def ledger_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return dict(conn.execute("SELECT state, count(*) FROM items GROUP BY state").fetchall())


# ---------------------------------------------------------------------- analysis


def max_in_window(times: Sequence[float], width: float) -> int:
    """The most events in any half-open window [t, t + width)."""
    ordered = sorted(times)
    best = 0
    for i, start in enumerate(ordered):
        best = max(best, bisect.bisect_left(ordered, start + width, lo=i) - i)
    return best


def cpu_between(
    samples: Sequence[tuple[float, float]], start: float, end: float
) -> tuple[float, float] | None:
    """(CPU seconds, wall seconds) from the first to the last of `Measured.cpu_samples` taken
    within [start, end]; None with fewer than two. The emulator's request times are
    `time.monotonic()` too, the same clock in every process on Linux."""
    inside = [s for s in samples if start <= s[0] <= end]
    if len(inside) < 2:
        return None
    (t0, cpu0), (t1, cpu1) = inside[0], inside[-1]
    return cpu1 - cpu0, t1 - t0


def achieved_rate(log: RequestLog) -> tuple[float | None, float]:
    """CI requests answered (not 429) per second while submitting: from the first to the last
    `POST /pic_jobs`, so neither start-up nor the last poll after submission counts.
    Returns (rate, span in seconds)."""
    submits = log.times_of("submit")
    if len(submits) < 2:
        return None, 0.0
    first, last = min(submits), max(submits)
    span = last - first
    if span <= 0:
        return None, 0.0
    accepted = [t for t in log.ci.times_of(exclude_status=429) if first <= t <= last]
    return (len(accepted) - 1) / span, span
