"""The progress line: done/total, rate, ETA and the states that are not success."""

from __future__ import annotations

import logging

import pytest

from orchestrator.cli.progress import LOG_EVERY, describe, display
from orchestrator.engine.runner import Progress

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
