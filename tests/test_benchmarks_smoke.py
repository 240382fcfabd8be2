"""The benchmark harness at smoke size: every scenario runs and reports its figures.

Only that the harness works is checked here; the figures of a smoke run mean nothing, so no
timing or target is asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_the_quick_benchmark_prints_one_table_with_every_scenarios_figures(
    tmp_path: Path,
) -> None:
    figures = tmp_path / "figures.json"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--workdir",
            str(tmp_path / "work"),
            "--json",
            str(figures),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    data = json.loads(figures.read_text(encoding="utf-8"))
    assert data["harness_errors"] == []
    rows = data["figures"]
    assert {row["scenario"].split()[0] for row in rows} == {
        *map(str, range(1, 8)),
        "11",
        "12",
        "13",
    }
    assert all(row["value"] is not None for row in rows), rows
    targeted = [row for row in rows if row["target"]]
    assert len(targeted) >= 15
    assert all(row["verdict"] in ("pass", "FAIL") for row in targeted)
    five = {row["name"]: row["value"] for row in rows if row["scenario"].startswith("5 ")}
    for name in (
        "client CPU, steady state",
        "floor, asyncio loop waking 200/s: CPU",
        "floor, asyncio loop waking 200/s: CPU per wake-up",
        "floor, bare aiohttp at 100 req/s: CPU",
        "floor, bare aiohttp at 100 req/s: CPU per request",
    ):
        assert isinstance(five.get(name), int | float), (name, five)
    table = [line for line in run.stdout.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    assert header == ["scenario", "figure", "value", "target", "result", "note"]
    assert len(table) == len(rows) + 2  # header and rule
