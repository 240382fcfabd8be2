"""Scenario 14: skip_existing over the large manifest of scenario 6, every output already there.

The same 1,000,000-row CSV, with `skip_existing = "exists"`, against an output bucket that
already holds the output of every row (indexed in the emulator without files, see
`benchmarks/serve.py`). The run lists the output prefix, skips every item and submits nothing;
its plan time (process start to the 'expanded:' line) is compared with the plan time of the
same manifest without skip_existing, run just before it: the two are timed back to back, under
one state of the machine (its page cache, the writeback of earlier scenarios' ledgers), not
against scenario 6's run of many minutes earlier, which the note still shows.
"""

from __future__ import annotations

import os
import shutil

from benchmarks.harness import OUTPUT_BUCKET, ledger_counts, write_manifest
from benchmarks.report import Figure, at_most, info
from benchmarks.scenarios import Bench, _expand, _join, _large_manifest

__all__ = ["skip_existing"]


def skip_existing(bench: Bench) -> list[Figure]:
    rows = bench.sizes.manifest_rows
    name = f"14 skip_existing, {rows:,} existing outputs"
    earlier = _expand(bench).first_line_time("expanded:")
    large = _large_manifest(bench)
    folder = bench.run_dir("large-skip")
    try:
        os.link(large.parent / "keys.csv", folder / "keys.csv")
    except OSError:
        shutil.copyfile(large.parent / "keys.csv", folder / "keys.csv")
    manifest = write_manifest(
        folder / "manifest.toml",
        name="largeskip",
        csv=folder / "keys.csv",
        rate=100,
        skip_existing='"exists"',
    )
    plain = write_manifest(
        folder / "plain.toml", name="largeplain", csv=folder / "keys.csv", rate=100
    )
    bench.reset()
    bench.emulator.pause_queue()  # the run without stops after its expansion
    bench.progress(f"14: run without skip_existing over {rows:,} rows, for the comparison")
    baseline = bench.picjobs(plain, timeout=max(60.0, 300.0 * rows / 1_000_000))
    without = baseline.first_line_time("expanded:")
    outputs = folder / "outputs.txt"
    with (large.parent / "keys.csv").open(encoding="utf-8") as keys, outputs.open("w") as out:
        next(keys)  # the header
        out.writelines("o/" + key for key in keys)  # the manifest's output = "o/{key}"
    bench.reset()
    indexed = bench.emulator.index_objects(OUTPUT_BUCKET, outputs)
    bench.progress(f"14: run with skip_existing over {rows:,} rows, {indexed:,} outputs existing")
    run = bench.picjobs(manifest, timeout=max(60.0, 120.0 * rows / 1_000_000))
    note = bench.check("skip_existing run", run)
    planned = run.first_line_time("expanded:")
    stats = bench.emulator.stats()
    counts = ledger_counts(manifest.parent / ".picjobs" / "largeskip.sqlite")
    if counts.get("skipped") != rows:
        short = f"skipped {counts.get('skipped', 0):,} of {rows:,}"
        bench.errors.append(short)
        note = _join(note, short)
    ratio = None if planned is None or not without else planned / without
    skipped_at = run.first_line_time("skip_existing =")
    times = (
        f"{planned:.1f} s with (skipping done at {skipped_at or 0:.1f} s), "
        f"{without:.1f} s without, just before (scenario 6's: {earlier or 0:.1f} s)"
        if planned is not None and without
        else "no 'expanded:' log line"
    )
    listings = int(stats["requests"].get("GET /", 0))
    return [
        at_most(name, "plan time, with / without skip_existing", ratio, 2, "x", _join(times, note)),
        at_most(name, "peak RSS", run.max_rss_mib, 100, "MiB", run.other_load),
        at_most(name, "jobs submitted", stats.get("jobs_created"), 0),
        info(name, "listing requests", listings, "", f"{-(-indexed // 1000):,} pages of outputs"),
    ]
