"""The submitter: claims pending items from the ledger (the claim is the committed intent), and
sends one `POST /pic_jobs` per item through a fixed pool of workers.

Outcomes are written back in batches: a JobId for each accepted job, CI's Code and Message for
a refused one, `unknown` where the request may or may not have created a job (the reconciler
settles those before anything is resent), and `pending` again for an item whose request
never left or was refused for throttling after every retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from orchestrator import defaults
from orchestrator.cloud.client import CIClient
from orchestrator.cloud.hedge import watched
from orchestrator.cloud.models import JobRequest
from orchestrator.cloud.retry import Retrier
from orchestrator.engine.flow import Outstanding
from orchestrator.engine.tracker import parse_ci_time
from orchestrator.exceptions import CIError, Disposition, TransportError
from orchestrator.items import Item
from orchestrator.ledger import ClaimedItem, Ledger, Outcomes
from orchestrator.manifest import DEFAULT_JOB

__all__ = ["JobTemplate", "SubmitStats", "Submitter"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobTemplate:
    """The parts of every job's request that come from the manifest rather than the item."""

    queue_id: str
    template_id: str | None
    process_rule: str | None
    is_pic_info: bool
    callback: str | None = None
    callback_format: str | None = None
    callback_type: str | None = None
    callback_mq: tuple[str, str, str] | None = None

    def request(self, item: Item) -> JobRequest:
        return JobRequest(
            input_object=item.key,
            output_bucket=item.output_bucket,
            output_region=item.output_region,
            output_object=item.output_key,
            queue_id=self.queue_id,
            template_id=self.template_id,
            process_rule=self.process_rule,
            is_pic_info=self.is_pic_info,
            user_data=item.user_data,
            job_level=item.job_level,
            callback=self.callback,
            callback_format=self.callback_format,
            callback_type=self.callback_type,
            callback_mq=self.callback_mq,
        )


@dataclass
class SubmitStats:
    submitted: int = 0  # accepted by CI: the run's report counts them
    last_error: CIError | None = None  # what the run says when CI keeps refusing
    # CI's CreationTime minus our clock when the answer came, lowest and highest seen (s).
    clock_offsets: tuple[float, float] | None = None
    # When each request of unknown outcome was sent: its job, if any, was created after.
    unknown_sent: dict[str, datetime] = field(default_factory=dict)
    # When (time.monotonic()) each of them was given up on: its settling may start a moment later.
    unknown_at: dict[str, float] = field(default_factory=dict)

    def note_creation(self, creation_time: str | None, now: datetime) -> None:
        created = parse_ci_time(creation_time)
        if created is None:
            return
        offset = (created - now).total_seconds()
        low, high = self.clock_offsets or (offset, offset)
        self.clock_offsets = (min(low, offset), max(high, offset))


@dataclass(frozen=True, slots=True)
class _Straggler:
    item: Item
    sent: datetime
    task: asyncio.Task[None]


class _Results:
    """Outcomes waiting to be committed. They go into the ledger with the next claim, in the
    same transaction; when no claim comes for `linger` seconds (the run is draining, or the
    queue is full), a timer writes them alone, and `size` of them are written at once.

    Released items (their requests never took effect) are written when the round ends: this
    round does not take them again."""

    def __init__(self, ledger: Ledger, size: int = 64, linger: float = 0.3) -> None:
        self.ledger = ledger
        self.size = size
        self.linger = linger
        self.outcomes = Outcomes()
        self.released: list[str] = []
        self.due = asyncio.Event()  # set by the timer: the flusher task writes them
        self._timer: asyncio.TimerHandle | None = None

    def added(self) -> None:
        """One outcome was added: write them soon, or now when there are `size`."""
        if len(self.outcomes) >= self.size:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.linger, self.due.set)

    def flush(self, claim: int = 0, jobs: Collection[str] | None = None) -> list[ClaimedItem]:
        """Write the outcomes and claim up to `claim` more items, in one transaction."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        claimed = self.ledger.record_outcomes(self.outcomes, claim, jobs)
        self.outcomes = Outcomes()  # kept if the write failed: the round's end tries again
        return claimed

    def finish(self) -> None:
        """The round is over: write everything, the released items too."""
        self.outcomes.released, self.released = self.released, []
        self.flush()


class Submitter:
    def __init__(
        self,
        client: CIClient,
        ledger: Ledger,
        template: JobTemplate | Mapping[str, JobTemplate],
        outstanding: Outstanding,
        *,
        retrier: Retrier,
        jobs: Collection[str] | None = None,
        concurrency: int = defaults.CONCURRENCY,
        claim_size: int = 64,
        claim_seconds: float = 0.5,
        on_failure: Callable[[str, str], bool] | None = None,
        pace: Callable[[], float | None] | None = None,
        stragglers: bool = False,
        max_stragglers: int = 64,
        refill: Callable[[asyncio.Event], Awaitable[bool]] | None = None,
    ) -> None:
        self.client = client
        self.ledger = ledger
        # One template for every item, or one per job name (an unnamed job's items: `default`).
        self.templates = template if isinstance(template, Mapping) else None
        self.template = template if isinstance(template, JobTemplate) else None
        self.jobs = jobs
        self.outstanding = outstanding
        self.retrier = retrier
        self.concurrency = concurrency
        self.claim_size = claim_size
        self.claim_seconds = claim_seconds
        self.on_failure = on_failure
        self.pace = pace
        self.stragglers = stragglers
        # Called when no pending item is left: waits while outcomes are still to come or to be
        # settled, and says whether items went back to pending meanwhile (sent in this round).
        self.refill = refill
        self.in_flight = 0  # items handed to a worker whose outcome is not recorded yet
        self.max_stragglers = max_stragglers
        self._stragglers: set[asyncio.Task[None]] = set()
        # Stragglers by item, while their requests go on: a listing that shows the job one of
        # them made settles it at once (`adopt`), and whatever its request ends with is ignored.
        self._straggling: dict[str, _Straggler] = {}
        self._adopted: set[str] = set()
        # Items whose requests ended unanswered (a timeout, a connection lost): the most likely
        # to have made a job, looked up beside the stragglers until settling takes them.
        self._unanswered: dict[str, tuple[Item, datetime, float]] = {}
        self.straggled = asyncio.Event()  # set when a request straggles or ends unanswered
        self.stats = SubmitStats()
        self._results = _Results(ledger)
        self._low_water = 0

    def window(self) -> int:
        """How many items to hold claimed and not yet taken by a worker. Unpaced: what the
        connections can send at once. Paced: about `claim_seconds` of work at the limiter's
        current rate (at most `claim_size`), so that a claim, and the outcomes written with
        it, commits a few times a second rather than every few requests; each commit costs
        more than the rows it writes."""
        rate = self.pace() if self.pace is not None else None
        if rate is None:
            return max(1, min(self.claim_size, self.concurrency))
        least = min(math.ceil(rate), self.concurrency)
        return max(1, least, min(math.ceil(rate * self.claim_seconds), self.claim_size))

    async def run(self, stop: asyncio.Event) -> None:
        """Submit pending items until none is left, `stop` is set, or CI keeps refusing us."""
        # Every claimed item is an unknown to settle after a crash, so few are claimed ahead:
        # the queue is topped up to `window` when it falls to half of it, and each worker holds
        # one item (waiting for its rate slot or its answer). Workers wake this loop only then.
        queue: asyncio.Queue[Item | None] = asyncio.Queue()
        low = asyncio.Event()
        workers = [
            asyncio.create_task(self._worker(queue, low, stop)) for _ in range(self.concurrency)
        ]
        flusher = asyncio.create_task(self._flush_when_due())
        try:
            while not stop.is_set() and not self.retrier.exhausted:
                window = self.window()
                self._low_water = window // 2
                if queue.qsize() > self._low_water:
                    low.clear()
                    await _first_of(low, stop)
                    continue
                room = await self.outstanding.wait_for_room(window - queue.qsize(), stop)
                if stop.is_set():
                    break
                batch = self._results.flush(room, self.jobs)
                if not batch:
                    if self.refill is not None and await self.refill(stop):
                        continue
                    break
                # Reserve the room now: a later claim must not count on it while these are sent.
                self.outstanding.add(len(batch))
                self.in_flight += len(batch)
                for item in batch:
                    queue.put_nowait(item)
        finally:
            for _ in workers:
                queue.put_nowait(None)
            try:
                await asyncio.gather(*workers)
                await asyncio.gather(*self._stragglers)
            finally:
                flusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await flusher  # a write that failed there fails the run here
                self._results.finish()

    def flush(self) -> None:
        """Write the outcomes recorded so far (unknown ones become visible to settling)."""
        if self._results.outcomes:
            self._results.flush()

    async def _flush_when_due(self) -> None:
        results = self._results
        while True:
            await results.due.wait()
            results.due.clear()
            results.flush()

    async def _worker(
        self, queue: asyncio.Queue[Item | None], low: asyncio.Event, stop: asyncio.Event
    ) -> None:
        while (item := await queue.get()) is not None:
            if queue.qsize() <= self._low_water:
                low.set()
            if stop.is_set() or self.retrier.exhausted:
                self._results.released.append(item.item_id)  # claimed but never sent
                self.in_flight -= 1
                await self.outstanding.done(1)
                continue
            await self._send(item)

    async def _send(self, item: Item) -> None:
        """Submit `item`, waiting for the answer until the client takes the request for a
        straggler (unanswered for longer than the answers so far say is normal: its answer
        lost, most likely); it then goes on alone until its own timeout, and the worker takes
        the next item rather than stall with it."""
        if not self.stragglers or len(self._stragglers) >= self.max_stragglers:
            await self._submit(item)
            return
        sent = datetime.now(UTC)
        task, turn = watched(self._submit(item))
        await turn
        if not task.done():
            self._stragglers.add(task)
            task.add_done_callback(self._stragglers.discard)
            self._straggling[item.item_id] = _Straggler(item, sent, task)
            self.straggled.set()

    def straggling(self) -> list[tuple[Item, datetime]]:
        """The items whose requests straggle, and when each was sent (its job, if any, was
        created after)."""
        return [(s.item, s.sent) for s in self._straggling.values()]

    def unanswered(self, younger_than: float) -> list[tuple[Item, datetime]]:
        """The items whose requests ended unanswered less than `younger_than` seconds ago (the
        older ones are settling's), and when each was sent."""
        now = time.monotonic()
        for item_id in [
            k for k, (_, _, at) in self._unanswered.items() if now - at >= younger_than
        ]:
            del self._unanswered[item_id]
        return [(item, sent) for item, sent, _ in self._unanswered.values()]

    def forget_unanswered(self, item_ids: Collection[str]) -> None:
        for item_id in item_ids:
            self._unanswered.pop(item_id, None)

    def adopt(self, pairs: Collection[tuple[str, str]]) -> int:
        """(item_id, job_id): a listing shows the job a straggling request made. The item is
        recorded as submitted with it, and its request is stopped: no other attempt of it is
        sent, and how it would have ended is ignored. An item whose request has ended since is
        left to its own outcome. Returns how many were adopted."""
        taken = [(item_id, job) for item_id, job in pairs if item_id in self._straggling]
        if not taken:
            return 0
        adopted = self.ledger.adopt(taken)
        for item_id, _ in taken:
            self._adopted.add(item_id)
            self._straggling.pop(item_id).task.cancel()
        return adopted

    async def _submit(self, item: Item) -> None:
        try:
            await self._submit_one(item)
        except asyncio.CancelledError:
            if item.item_id not in self._adopted:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # stopped by `adopt`: its outcome is known
        finally:
            self.in_flight -= 1  # its outcome is recorded (or the run is failing)

    def _answered(self, item: Item) -> bool:
        """The request of `item` has ended: False if its item was adopted meanwhile, and
        what the request ended with is to be ignored."""
        return self._straggling.pop(item.item_id, None) is not None or (
            item.item_id not in self._adopted
        )

    async def _submit_one(self, item: Item) -> None:
        if self.templates is not None:
            template = self.templates[item.job or DEFAULT_JOB]
        else:
            assert self.template is not None
            template = self.template
        request = template.request(item)
        sent = datetime.now(UTC)
        try:
            job = await self.retrier.call(
                lambda: self.client.submit(request), idempotent=False, name=f"submit {item.key!r}"
            )
        except CIError as exc:
            if not self._answered(item):
                return
            if exc.disposition is Disposition.UNKNOWN:
                self.stats.unknown_sent[item.item_id] = sent
                self.stats.unknown_at[item.item_id] = time.monotonic()
                if isinstance(exc, TransportError) and self.stragglers:
                    self._unanswered[item.item_id] = (item, sent, time.monotonic())
                    self.straggled.set()
            self._record_error(item, exc)
            await self.outstanding.done(1)
            return
        if not self._answered(item):
            return
        if self.stats.submitted % 64 == 0:
            self.stats.note_creation(job.creation_time, datetime.now(UTC))
        self.stats.submitted += 1
        self._results.outcomes.submitted.append((item.item_id, job.job_id))
        self._results.added()

    def _record_error(self, item: Item, exc: CIError) -> None:
        self.stats.last_error = exc
        outcomes = self._results.outcomes
        if exc.disposition is Disposition.PERMANENT:
            message = getattr(exc, "error_message", None) or str(exc)
            outcomes.failed.append((item.item_id, exc.code, message))
            log.warning("item %r failed: %s", item.key, exc)
            if self.on_failure is not None:
                self.on_failure(exc.code, message)
        elif exc.disposition is Disposition.UNKNOWN:
            outcomes.unknown.append(item.item_id)
            log.info("outcome unknown for %r (%s); will reconcile before any resend", item.key, exc)
        else:
            self._results.released.append(item.item_id)
            log.info("gave up on %r for now (%s); it stays pending", item.key, exc)
            return
        self._results.added()


async def _first_of(*events: asyncio.Event) -> None:
    """Wait until one of `events` is set."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
