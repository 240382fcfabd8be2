"""Progress of a run: a live bar on a terminal, a log line every few seconds elsewhere."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

from orchestrator.engine.progress import Progress as Snapshot
from orchestrator.ledger import State

__all__ = ["LOG_EVERY", "TTY_EVERY", "describe", "display"]

TTY_EVERY = 1.0
LOG_EVERY = 5.0
_ACTIVE = tuple(state for state in State if state is not State.SUCCESS)


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


def _terminal() -> Console:
    return Console(file=sys.stderr)


class _ConsoleHandler(logging.Handler):
    """Log records printed by the console that draws the bar, so they land above it."""

    def __init__(self, console: Console, formatter: logging.Formatter | None) -> None:
        super().__init__()
        self.console = console
        self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            self.console.print(line, markup=False, highlight=False, emoji=False, soft_wrap=True)
        except Exception:
            self.handleError(record)


@contextlib.contextmanager
def _logging_through(console: Console, log: logging.Logger) -> Iterator[None]:
    saved = log.handlers[:]
    log.handlers[:] = [_ConsoleHandler(console, handler.formatter) for handler in saved]
    try:
        yield
    finally:
        log.handlers[:] = saved


@contextlib.contextmanager
def display(
    enabled: bool, log: logging.Logger
) -> Iterator[tuple[Callable[[Snapshot], None], float]]:
    """The progress callback for the runner and how often to call it.

    On a terminal: a live bar, with the log lines printed above it while it is shown, left at
    the run's final counts. Elsewhere: a log line per snapshot, but none for the final one
    (the summary that follows says it)."""
    if not enabled:
        yield (lambda snapshot: None), LOG_EVERY
        return
    console = _terminal()
    if not console.is_terminal:

        def log_line(snapshot: Snapshot) -> None:
            if not snapshot.final:
                log.info("%s", describe(snapshot))

        yield log_line, LOG_EVERY
        return
    bar = Progress(
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.description}"),
        console=console,
    )
    task = bar.add_task("starting", total=None)

    def update(snapshot: Snapshot) -> None:
        bar.update(
            task, completed=snapshot.done, total=snapshot.total, description=describe(snapshot)
        )

    with bar, _logging_through(console, log):
        yield update, TTY_EVERY
