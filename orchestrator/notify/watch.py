"""A run, watched from start to exit, so that its outcome reaches `[notify]` whatever it was."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from orchestrator.exceptions import PicjobsError
from orchestrator.exit_codes import ExitCode
from orchestrator.ledger import Ledger
from orchestrator.manifest import Manifest
from orchestrator.notify.deliver import BUDGET_SECONDS, Notifier
from orchestrator.notify.message import FailureGroup, Outcome

__all__ = ["Watch", "watching"]

log = logging.getLogger(__name__)


@dataclass
class Watch:
    """What the command learns while it runs: its one-line error, and the run's figures."""

    error: str | None = None
    seconds: float = 0.0
    submitted: int = 0

    def note(self, error: str) -> None:
        self.error = error


@contextlib.contextmanager
def watching(manifest: Manifest, *, budget: float = BUDGET_SECONDS) -> Iterator[Watch]:
    """Ping the heartbeat now, and at exit tell `[notify]` how the run ended.

    The exit code is the one the command leaves with (its SystemExit); a crash counts as
    failed. Delivery is bounded by `budget` and never changes the exit or its code.
    """
    watch = Watch()
    if not manifest.notify.enabled:
        yield watch
        return
    notifier = Notifier(manifest.notify, budget=budget)
    notifier.started()
    code: int = ExitCode.OK
    try:
        yield watch
    except SystemExit as exc:
        code = _exit_status(exc.code)
        raise
    except BaseException as exc:
        code = ExitCode.FAILED
        watch.error = watch.error or f"unexpected {type(exc).__name__}; see the log"
        raise
    finally:
        notifier.finished(_outcome(manifest, code, watch))


def _exit_status(code: object) -> int:
    if code is None:
        return ExitCode.OK
    return code if isinstance(code, int) else ExitCode.FAILED


def _outcome(manifest: Manifest, code: int, watch: Watch) -> Outcome:
    counts: dict[str, int] = {}
    failures: list[FailureGroup] = []
    if manifest.ledger_path.exists():
        try:
            with Ledger.open(manifest.ledger_path) as ledger:
                counts = ledger.counts()
                failures = [FailureGroup(*group) for group in ledger.failure_codes(3)]
        except PicjobsError as exc:  # the message goes out without the figures
            log.warning("notification without counts: %s", exc)
    return Outcome(
        manifest_name=manifest.name,
        manifest_path=manifest.path,
        exit_code=code,
        counts=counts,
        failures=failures,
        seconds=watch.seconds,
        submitted=watch.submitted,
        error=watch.error,
    )
