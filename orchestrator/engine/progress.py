"""Progress of a run: snapshots of the ledger's counts, with throughput over the last minute."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from orchestrator.ledger import FINAL_STATES, Ledger

__all__ = ["Progress", "ProgressReporter", "utc_iso"]


def utc_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Progress:
    """A snapshot for progress displays: counts per state, throughput over the last minute.

    `final` marks the last snapshot of a run, taken after its work ended."""

    counts: dict[str, int]
    total: int
    done: int
    rate: float  # items reaching a final state per second
    eta: float | None  # seconds, at that rate
    final: bool = False

    def as_dict(self) -> dict[str, object]:
        return {"done": self.done, "total": self.total, "rate": round(self.rate, 2),
                "eta_seconds": None if self.eta is None else round(self.eta)}  # fmt: skip


class ProgressReporter:
    """Every `every` seconds: a snapshot to the display, and the rate and ETA to the ledger."""

    def __init__(
        self,
        ledger: Ledger,
        every: float,
        display: Callable[[Progress], None] | None,
        *,
        jobs: frozenset[str] | None = None,
    ) -> None:
        self.ledger = ledger
        self.jobs = jobs  # count only these jobs' items (the manifest's); None: all
        self.every = every
        self.display = display
        self._samples: collections.deque[tuple[float, int]] = collections.deque()

    def snapshot(self, *, final: bool = False) -> Progress:
        counts = self.ledger.counts(self.jobs)
        now = time.monotonic()
        total = sum(counts.values())
        done = sum(counts[state] for state in FINAL_STATES)
        samples = self._samples
        samples.append((now, done))
        while now - samples[0][0] > 60:
            samples.popleft()
        first_time, first_done = samples[0]
        rate = (done - first_done) / (now - first_time) if now > first_time else 0.0
        eta = (total - done) / rate if rate > 0 else None
        return Progress(counts, total, done, rate, eta, final)

    async def run(self) -> None:
        pause = self.every
        while True:
            await asyncio.sleep(pause)
            before = time.monotonic()
            snapshot = self.snapshot()
            # Counting a million rows takes a while and blocks the loop: keep it under 5 % of it.
            pause = max(self.every, 20 * (time.monotonic() - before))
            self.ledger.meta_set("progress", json.dumps({**snapshot.as_dict(), "at": utc_iso()}))
            if self.display is not None:
                self.display(snapshot)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        task = asyncio.create_task(self.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def finish(self) -> None:
        """Show the counts the run ended with (a display's last word before the summary)."""
        if self.display is not None:
            self.display(self.snapshot(final=True))
