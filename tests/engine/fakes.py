"""Small stand-ins for the engine's unit tests: a CI that lives in memory, and items to load.

FakeCI answers the calls the engine makes of CIClient, keeps jobs and queues in dictionaries,
records every call, and raises the errors a test queues for an operation, in order.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from orchestrator.cloud.client import CIClient
from orchestrator.cloud.models import (
    DescribeResult,
    JobDetail,
    JobPage,
    JobRequest,
    JobState,
    Queue,
    QueuePage,
    QueueState,
)
from orchestrator.exceptions import CIError, ConnectError, DisconnectError, ServiceError
from orchestrator.items import Item
from orchestrator.ledger import Ledger

BUCKET = "src-1250000000"
T0 = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)

__all__ = [
    "BUCKET",
    "T0",
    "Clock",
    "FakeCI",
    "lost",
    "refused",
    "throttled",
    "unreachable",
]


def refused(code: str = "InvalidArgument", message: str = "bad input") -> ServiceError:
    return ServiceError(400, code, message)


def throttled() -> ServiceError:
    return ServiceError(429, "RequestLimitExceeded", "slow down")


def unreachable() -> ConnectError:
    return ConnectError("connection refused")


def lost() -> DisconnectError:
    return DisconnectError("connection reset after sending")


class Clock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class _Settings:
    bucket: str
    straggler_after: float = 2.0
    max_stragglers: int = 64


class FakeCI:
    def __init__(self, bucket: str = BUCKET) -> None:
        self.settings = _Settings(bucket)
        self.jobs: dict[str, JobDetail] = {}
        self.queues: dict[str, Queue] = {}
        self.calls: list[tuple[str, Any]] = []
        self.errors: dict[str, list[CIError]] = defaultdict(list)
        # A job whose create request "fails" after CI made it: kept, but the caller hears `lost`.
        self.create_then_lose: set[str] = set()
        self._ids = itertools.count(1)

    @property
    def client(self) -> CIClient:
        """This fake where the engine's type wants the real client."""
        return cast(CIClient, self)

    def fail(self, op: str, *errors: CIError) -> None:
        """The next calls of `op` raise these, one each, before it answers normally again."""
        self.errors[op].extend(errors)

    def count(self, op: str) -> int:
        return sum(1 for name, _ in self.calls if name == op)

    def _enter(self, op: str, arg: Any) -> None:
        self.calls.append((op, arg))
        if self.errors[op]:
            raise self.errors[op].pop(0)

    def add_job(self, state: str, *, input_object: str = "in/a.jpg", **fields: Any) -> str:
        job_id = f"j{next(self._ids):08d}"
        self.jobs[job_id] = JobDetail(job_id, state, input_object=input_object, **fields)
        return job_id

    def finish(self, job_id: str, state: str, code: str = "", message: str = "") -> None:
        self.jobs[job_id] = replace(self.jobs[job_id], state=state, code=code, message=message)

    # -- jobs --

    async def submit(self, request: JobRequest) -> JobDetail:
        self._enter("submit", request.input_object)
        job_id = self.add_job(
            JobState.SUBMITTED,
            input_object=request.input_object,
            output_bucket=request.output_bucket,
            output_object=request.output_object,
            queue_id=request.queue_id or "",
            creation_time=T0.strftime("%Y-%m-%dT%H:%M:%S%z"),
        )
        if request.input_object in self.create_then_lose:
            raise lost()
        return self.jobs[job_id]

    async def describe(self, job_ids: Sequence[str]) -> DescribeResult:
        self._enter("describe", list(job_ids))
        found = [self.jobs[job_id] for job_id in job_ids if job_id in self.jobs]
        return DescribeResult(found, [job_id for job_id in job_ids if job_id not in self.jobs])

    async def list_jobs(self, **query: Any) -> AsyncIterator[JobDetail]:
        self._enter("list_jobs", query)
        wanted = query.get("input_object")
        for job in self.jobs.values():
            if wanted is None or job.input_object == wanted:
                yield job

    async def list_jobs_page(
        self, *, size: int = 100, next_token: str = "", **query: Any
    ) -> JobPage:
        self._enter("list_jobs_page", {**query, "next_token": next_token})
        # Newest first, as CI orders by default; the token is where the next page starts.
        jobs = list(reversed(self.jobs.values()))
        start = int(next_token or 0)
        page = jobs[start : start + size]
        more = start + size < len(jobs)
        return JobPage(page, str(start + size) if more else "")

    async def cancel(self, job_id: str) -> None:
        self._enter("cancel", job_id)
        self.finish(job_id, JobState.CANCEL)

    # -- queues --

    def add_queue(
        self, queue_id: str, state: str = QueueState.ACTIVE, notify: Mapping[str, str] = {}
    ) -> Queue:
        queue = Queue(queue_id, f"name-{queue_id}", state, max_size=10, notify=dict(notify))
        self.queues[queue_id] = queue
        return queue

    async def queues_page(self, *, queue_ids: Sequence[str]) -> QueuePage:
        self._enter("queues_page", list(queue_ids))
        found = [self.queues[q] for q in queue_ids if q in self.queues]
        return QueuePage(found, len(found), [q for q in queue_ids if q not in self.queues])

    async def list_queues(self, *, state: str | None = None) -> list[Queue]:
        self._enter("list_queues", state)
        return [q for q in self.queues.values() if state is None or q.state == state]

    async def update_queue(
        self, queue_id: str, *, name: str, state: str, notify: Mapping[str, str] | None
    ) -> Queue:
        self._enter("update_queue", {"name": name, "state": state, "notify": notify})
        queue = replace(self.queues[queue_id], name=name, state=state, notify=dict(notify or {}))
        self.queues[queue_id] = queue
        return queue


def item(n: int, level: int = 0) -> Item:
    return Item(
        item_id=f"id-{n:06d}",
        bucket=BUCKET,
        key=f"in/{n:06d}.jpg",
        output_bucket="dst-1250000000",
        output_region="ap-guangzhou",
        output_key=f"out/{n:06d}.webp",
        job_level=level,
    )


def items(count: int) -> Iterator[Item]:
    return (item(n) for n in range(count))


def open_ledger(folder: Path, count: int = 0, clock: Clock | None = None) -> Ledger:
    ledger = Ledger.open(folder / "ledger.sqlite", clock=clock or Clock())
    if count:
        ledger.add_items(items(count))
    return ledger
