"""A real nightly run against the emulator, with failures and a throttled start, and its HTML
report: made once for the report tests, which only read it."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import cli
from orchestrator.ledger import Ledger

from ..support import emulator_thread, env, put_images, write_manifest

HOSTILE_KEY = 'gone/<b>bold</b> & "quoted" <script>alert(1)</script>.png'


@dataclass(frozen=True)
class RenderedRun:
    manifest: Path
    page: Path
    counts: dict[str, int]
    exit_codes: tuple[int, int]


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env())
    return result.exit_code, result.stdout, result.stderr


def _write_keys(path: Path, keys: list[str]) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["key", "job_level"])
        writer.writerows([key, i % 3] for i, key in enumerate(keys))


@pytest.fixture(scope="package")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RenderedRun]:
    """Two runs: a small first one; then 90 more images and 8 missing keys over three
    JobLevels, at three times the rate the emulator admits (so CI throttles), with the first
    run's failures retried. The report is of the ledger after both."""
    root = tmp_path_factory.mktemp("rendered")
    images = [f"img/{i:03d}.png" for i in range(100)]
    missing = [f"gone/{i}.png" for i in range(7)] + [HOSTILE_KEY]
    put_images(root / "data", images)
    with emulator_thread(root / "data", rate=30.0, burst=3) as emu:
        manifest = write_manifest(root, emu.url, 'csv = "keys.csv"', "[limits]\nrate = 90\n")
        _write_keys(root / "keys.csv", images[:10] + missing[:2])
        first = invoke("run", "--quiet", str(manifest))
        _write_keys(root / "keys.csv", images + missing)
        second = invoke("run", "--quiet", "--retry-failed", str(manifest))
    page = root / "report.html"
    code, _, err = invoke("report", str(manifest), "--format", "html", "-o", str(page))
    assert code == 0, err
    with Ledger.open(root / ".picjobs" / "nightly.sqlite") as ledger:
        counts = ledger.counts()
    yield RenderedRun(manifest, page, counts, (first[0], second[0]))
