"""The tracker: describes outstanding jobs in batches and writes final states to the ledger.

It polls with backoff: the interval shrinks back to its minimum while polls keep finding
finished jobs and grows while they find few, so tracking costs a small, bounded share of
requests per job however long jobs take.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Final

from orchestrator import defaults
from orchestrator.cloud.client import CIClient
from orchestrator.cloud.hedge import hedged
from orchestrator.cloud.models import JobDetail, JobState
from orchestrator.cloud.retry import Retrier
from orchestrator.engine.flow import Outstanding
from orchestrator.exceptions import CIError
from orchestrator.ledger import JobUpdate, Ledger, State

__all__ = ["Tracker", "job_update", "ledger_state", "parse_ci_time"]

log = logging.getLogger(__name__)

# A job CI says does not exist this many polls in a row is recorded as failed.
MISSING_LIMIT = 5

# The one translation of CI's job states into the ledger's. A state CI may add later is taken
# as not final, so the job keeps being polled.
_LEDGER_STATE: Final[Mapping[JobState, State]] = {
    JobState.SUCCESS: State.SUCCESS,
    JobState.FAILED: State.FAILED,
    JobState.CANCEL: State.CANCELLED,
    JobState.SUBMITTED: State.SUBMITTED,
    JobState.RUNNING: State.SUBMITTED,
    JobState.PAUSE: State.SUBMITTED,
}


def ledger_state(ci_state: str) -> State:
    """The ledger state for a job CI describes as `ci_state`."""
    try:
        return _LEDGER_STATE[JobState(ci_state)]
    except ValueError:
        return State.SUBMITTED


def parse_ci_time(value: str | None) -> datetime | None:
    if not value:
        return None
    if len(value) > 19 and value[10] == "T":  # CI's own form, read without strptime's cost
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z"):
        try:
            return datetime.strptime(value, fmt)
        except ValueError:
            continue
    return None


def job_update(job: JobDetail, row: int | None = None) -> JobUpdate:
    """What a described final job means for its ledger row (`row`, its rowid, when known)."""
    state = ledger_state(job.state)
    failed = state != State.SUCCESS
    return JobUpdate(
        job_id=job.job_id,
        state=state,
        code=job.code if failed else None,
        message=job.message if failed else None,
        result=job.result.as_dict() if job.result else None,
        finished_at=parse_ci_time(job.end_time),
        row=row,
    )


class Tracker:
    def __init__(
        self,
        client: CIClient,
        ledger: Ledger,
        outstanding: Outstanding,
        *,
        retrier: Retrier,
        batch: int = 50,
        write_every: int = 250,
        poll_min: float = defaults.POLL_MIN,
        poll_max: float = defaults.POLL_MAX,
        on_final: Callable[[JobDetail], None] | None = None,
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.outstanding = outstanding
        self.retrier = retrier
        self.batch = batch
        self.write_every = write_every
        self.poll_min = poll_min
        self.poll_max = poll_max
        self.on_final = on_final
        self.requests = 0
        self.described = 0  # jobs asked about by the last poll
        self._missing: dict[str, int] = {}
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def poll_once(self) -> int:
        """Describe every outstanding job once; return how many reached a final state.

        Final states are written a few pages at a time (`write_every` updates): each ledger
        commit costs about as much as writing fifty rows."""
        finished = 0
        after = 0
        self.described = 0
        updates: list[JobUpdate] = []
        final: list[JobDetail] = []
        while page := self.ledger.outstanding_job_ids(self.batch, after):
            after = page[-1][0]
            ids = [job_id for _, job_id in page]
            rows = {job_id: rowid for rowid, job_id in page}
            if len(rows) < len(ids):  # a job named by two rows: both are found by its id
                rows = {}
            self.described += len(ids)
            try:
                result = await self.retrier.call(
                    lambda ids=ids: hedged(lambda: self.client.describe(ids)),  # type: ignore[misc]
                    idempotent=True,
                    name="describe",
                )
            except CIError as exc:
                log.warning("describing %d jobs failed: %s; will try again", len(ids), exc)
            else:
                done = [job for job in result.jobs if job.final]
                final += done
                updates += [job_update(job, rows.get(job.job_id)) for job in done]
                updates += self._missing_updates(result.missing, rows)
                if len(updates) >= self.write_every:
                    finished += self._write(updates, final)
            finally:
                self.requests += 1
            if len(page) < self.batch:
                # The end of what was outstanding: what the submitter wrote since then waits for
                # the next poll, rather than a page of its own for every few jobs.
                break
        finished += self._write(updates, final)
        await self.outstanding.done(finished)
        return finished

    def _write(self, updates: list[JobUpdate], final: list[JobDetail]) -> int:
        """Record `updates`, tell `on_final` of the `final` jobs, and empty both lists."""
        finished = self.ledger.record_states(updates) if updates else 0
        if self.on_final is not None:
            for job in final:
                self.on_final(job)
        updates.clear()
        final.clear()
        return finished

    def _missing_updates(self, missing: list[str], rows: Mapping[str, int]) -> list[JobUpdate]:
        updates = []
        for job_id in missing:
            self._missing[job_id] = self._missing.get(job_id, 0) + 1
            if self._missing[job_id] >= MISSING_LIMIT:
                del self._missing[job_id]
                updates.append(
                    JobUpdate(
                        job_id,
                        State.FAILED,
                        "NoSuchJob",
                        "CI no longer knows this job",
                        row=rows.get(job_id),
                    )
                )
        return updates

    def next_interval(self, interval: float, finished: int) -> float:
        """The wait before the next poll, after one that saw `finished` of the jobs it asked
        about reach a final state. A fifth or more finished: poll again soon. Little finished:
        back off. Judged on the jobs described, not on full pages, so that the last few jobs
        of a run are not polled ever more slowly because they are few."""
        if finished * 5 >= self.described:
            return self.poll_min
        return min(self.poll_max, interval * 1.5)

    async def run(self, submitting: asyncio.Event, stop: asyncio.Event) -> None:
        """Poll until nothing is outstanding and `submitting` is clear, or `stop` is set."""
        interval = self.poll_min
        while not stop.is_set():
            finished = await self.poll_once()
            if not submitting.is_set() and self.ledger.outstanding_count() == 0:
                return
            interval = self.next_interval(interval, finished)
            # A timer sets the same event that wake() sets: one wake-up, no task per wait.
            self._wake.clear()
            timer = asyncio.get_running_loop().call_later(interval, self._wake.set)
            try:
                await self._wake.wait()
            finally:
                timer.cancel()
