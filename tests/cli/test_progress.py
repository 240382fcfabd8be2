"""The progress line: done/total, rate, ETA and the states that are not success."""

from __future__ import annotations

import io
import logging
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from orchestrator.cli import cli, progress
from orchestrator.cli.progress import LOG_EVERY, describe, display
from orchestrator.engine.runner import Progress

DEMO = Path(__file__).parents[2] / "manifests" / "demo.toml"
COUNTS = dict.fromkeys(
    ("pending", "submitting", "unknown", "submitted", "success", "failed", "cancelled"), 0
)


def test_the_line_shows_done_total_rate_eta_and_the_busy_states() -> None:
    counts = {**COUNTS, "pending": 700, "submitted": 50, "success": 245, "failed": 5}
    line = describe(Progress(counts, total=1000, done=250, rate=12.5, eta=3725))
    assert line == "250/1000 final, 12.5 jobs/s, ETA 1:02:05 (pending 700, submitted 50, failed 5)"


def test_without_a_rate_the_eta_is_unknown() -> None:
    assert describe(Progress({**COUNTS, "success": 3}, total=3, done=3, rate=0.0, eta=None)) == (
        "3/3 final, 0.0 jobs/s, ETA -"
    )


def test_off_a_terminal_progress_is_a_log_line_every_few_seconds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = logging.getLogger("progress-test")
    with caplog.at_level(logging.INFO, logger=log.name), display(True, log) as (update, every):
        update(Progress({**COUNTS, "pending": 1}, total=1, done=0, rate=0.0, eta=None))
    assert every == LOG_EVERY
    assert caplog.messages == ["0/1 final, 0.0 jobs/s, ETA - (pending 1)"]


def test_quiet_or_json_runs_show_no_progress(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("progress-test")
    with caplog.at_level(logging.INFO, logger=log.name), display(False, log) as (update, _):
        update(Progress(COUNTS, total=0, done=0, rate=0.0, eta=None))
    assert caplog.messages == []


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _screen_lines(raw: str) -> list[str]:
    """What each line of a terminal shows at the end: a carriage return and an erase (the
    bar redrawing itself) leave only what was written after them."""
    return [ANSI.sub("", line.split("\r")[-1]).strip() for line in raw.split("\n")]


def test_on_a_terminal_log_lines_go_above_the_bar_and_the_bar_ends_at_its_final_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=200, color_system=None)
    monkeypatch.setattr(progress, "_terminal", lambda: terminal)
    manifest = tmp_path / "demo.toml"
    shutil.copy(DEMO, manifest)

    result = CliRunner().invoke(cli, ["run", str(manifest)])

    assert result.exit_code == 0, result.output
    lines = [line for line in _screen_lines(screen.getvalue()) if line]
    logged = [line for line in lines if " INFO expanded: " in line]
    bars = [line for line in lines if " final, " in line]
    assert logged and bars
    assert all(" final, " not in line and "starting" not in line for line in logged)
    assert lines[-1] == bars[-1]
    assert bars[-1].startswith("━") and " 100% 16/16 final, " in bars[-1]
    assert result.stdout.startswith("demo: success 16 (16 submitted this run")


def test_the_final_snapshot_is_not_logged_off_a_terminal(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("progress-test")
    with caplog.at_level(logging.INFO, logger=log.name), display(True, log) as (update, _):
        update(Progress({**COUNTS, "success": 1}, total=1, done=1, rate=0.0, eta=None, final=True))
    assert caplog.messages == []
