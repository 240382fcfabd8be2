from __future__ import annotations

from pathlib import Path

from orchestrator.exit_codes import ExitCode
from orchestrator.manifest.notify import NotifyEvent
from orchestrator.notify import FailureGroup, Outcome, compose, event_of
from orchestrator.notify.message import MAX_LENGTH


def test_exit_codes_map_to_the_events_a_manifest_names() -> None:
    assert event_of(ExitCode.OK) is NotifyEvent.SUCCESS
    assert event_of(ExitCode.FAILED) is NotifyEvent.FAILED
    assert event_of(ExitCode.USAGE) is NotifyEvent.FAILED
    assert event_of(ExitCode.TRIPPED) is NotifyEvent.TRIPPED
    assert event_of(ExitCode.INCOMPLETE) is NotifyEvent.INCOMPLETE
    assert event_of(ExitCode.LOCKED) is NotifyEvent.INCOMPLETE
    assert event_of(-9) is NotifyEvent.FAILED


def test_the_message_names_the_run_its_meaning_counts_top_codes_pace_and_rerun_command() -> None:
    outcome = Outcome(
        "thumbs",
        Path("/srv/thumbs.toml"),
        1,
        {"success": 95, "failed": 5, "pending": 0},
        (
            FailureGroup("InvalidArgument", 3, "a.jpg"),
            FailureGroup("InternalError", 1, "b.jpg"),
            FailureGroup("NoSuchKey", 1, "c.jpg"),
            FailureGroup("Fourth", 1, "d.jpg"),
        ),
        seconds=125,
        submitted=100,
    )
    title, body = compose(outcome)
    assert title == "picjobs thumbs: exit 1, failed"
    assert body.splitlines() == [
        "thumbs: exit 1, finished, some items failed",
        "items: success 95, failed 5",
        "took 2m05s, 100 submitted (0.8/s)",
        "largest failure codes:",
        "  InvalidArgument x3, e.g. a.jpg",
        "  InternalError x1, e.g. b.jpg",
        "  NoSuchKey x1, e.g. c.jpg",
        "re-run the failures from: picjobs report /srv/thumbs.toml --failed-only -o failed.csv",
    ]


def test_the_message_stays_short_with_huge_keys_and_errors() -> None:
    outcome = Outcome(
        "n" * 200,
        Path("/m.toml"),
        2,
        {"failed": 1},
        tuple(FailureGroup("C" * 500, 1, "k" * 5000) for _ in range(3)),
        error="E" * 5000,
    )
    _, body = compose(outcome)
    assert len(body) <= MAX_LENGTH
    assert "error: EEE" in body
