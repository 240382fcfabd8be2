"""Progress of a run: a live bar on a terminal, a log line every few seconds elsewhere."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

from orchestrator.engine.runner import Progress as Snapshot

__all__ = ["LOG_EVERY", "TTY_EVERY", "describe", "display"]

TTY_EVERY = 1.0
LOG_EVERY = 5.0
_ACTIVE = ("pending", "submitting", "unknown", "submitted", "failed", "cancelled")


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA -"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"ETA {hours}:{minutes:02d}:{secs:02d}" if hours else f"ETA {minutes}:{secs:02d}"


def describe(snapshot: Snapshot) -> str:
    """One line: done/total, rate, ETA and the counts of the states that are not success."""
    busy = ", ".join(
        f"{state} {snapshot.counts[state]}" for state in _ACTIVE if snapshot.counts.get(state)
    )
    return (
        f"{snapshot.done}/{snapshot.total} final, {snapshot.rate:.1f} jobs/s, "
        f"{_eta(snapshot.eta)}{f' ({busy})' if busy else ''}"
    )


@contextlib.contextmanager
def display(
    enabled: bool, log: logging.Logger
) -> Iterator[tuple[Callable[[Snapshot], None], float]]:
    """The progress callback for the runner and how often to call it."""
    if not enabled:
        yield (lambda snapshot: None), LOG_EVERY
        return
    console = Console(file=sys.stderr)
    if not console.is_terminal:
        yield (lambda snapshot: log.info("%s", describe(snapshot))), LOG_EVERY
        return
    bar = Progress(
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=True,
    )
    task = bar.add_task("starting", total=None)

    def update(snapshot: Snapshot) -> None:
        bar.update(
            task, completed=snapshot.done, total=snapshot.total, description=describe(snapshot)
        )

    with bar:
        yield update, TTY_EVERY
