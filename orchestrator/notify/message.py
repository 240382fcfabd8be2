"""The message a person reads after a night's run: short enough for a chat robot."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from orchestrator.exit_codes import ExitCode
from orchestrator.manifest.notify import NotifyEvent

__all__ = ["MAX_LENGTH", "FailureGroup", "Outcome", "compose", "event_of"]

MAX_LENGTH: Final = 2000  # WeCom and DingTalk robots cut or refuse longer text

_MEANING: Final[Mapping[int, str]] = {
    ExitCode.OK: "every item succeeded",
    ExitCode.FAILED: "finished, some items failed",
    ExitCode.USAGE: "did not run: a usage, manifest or ledger error",
    ExitCode.LOCKED: "did not run: another run holds the ledger",
    ExitCode.TRIPPED: "stopped: the failure breaker tripped",
    ExitCode.INCOMPLETE: "incomplete: deadline, signal or CI kept refusing; run again to resume",
}


@dataclass(frozen=True, slots=True)
class FailureGroup:
    code: str
    count: int
    example_key: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a run ended with, as far as a message needs it."""

    manifest_name: str
    manifest_path: Path
    exit_code: int
    counts: Mapping[str, int]
    failures: Sequence[FailureGroup] = ()
    seconds: float = 0.0
    submitted: int = 0
    error: str | None = None  # the one-line error of a run that crashed or never started


def event_of(exit_code: int) -> NotifyEvent:
    """The `[notify] on` word for an exit code; a crash or usage error counts as failed."""
    if exit_code == ExitCode.OK:
        return NotifyEvent.SUCCESS
    if exit_code == ExitCode.TRIPPED:
        return NotifyEvent.TRIPPED
    if exit_code in (ExitCode.INCOMPLETE, ExitCode.LOCKED):
        return NotifyEvent.INCOMPLETE
    return NotifyEvent.FAILED


def compose(outcome: Outcome) -> tuple[str, str]:
    """(title, body); the body stays under MAX_LENGTH characters whatever the keys are."""
    code = outcome.exit_code
    meaning = _MEANING.get(code, "ended unexpectedly")
    title = f"picjobs {outcome.manifest_name}: exit {code}, {event_of(code)}"
    lines = [f"{outcome.manifest_name}: exit {code}, {meaning}"]
    if outcome.error:
        lines.append(f"error: {_cut(outcome.error, 300)}")
    counts = ", ".join(f"{state} {n}" for state, n in outcome.counts.items() if n)
    if counts:
        lines.append(f"items: {counts}")
    if outcome.seconds > 0:
        pace = outcome.submitted / outcome.seconds
        lines.append(
            f"took {_duration(outcome.seconds)}, {outcome.submitted} submitted ({pace:.1f}/s)"
        )
    if outcome.failures:
        lines.append("largest failure codes:")
        lines.extend(
            f"  {_cut(group.code, 60)} x{group.count}, e.g. {_cut(group.example_key, 120)}"
            for group in outcome.failures[:3]
        )
        command = shlex.join(
            ["picjobs", "report", str(outcome.manifest_path), "--failed-only", "-o", "failed.csv"]
        )
        lines.append(f"re-run the failures from: {command}")
    return title, _cut("\n".join(lines), MAX_LENGTH)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
