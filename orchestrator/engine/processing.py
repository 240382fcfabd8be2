"""The working part of a run: submit the ledger's pending items and track them to the end.

Submission stops on a signal, at the deadline, when the failure breaker trips or when CI keeps
refusing requests; tracking goes on until nothing is outstanding, or the grace after the
deadline runs out, or a signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from datetime import UTC, datetime
from typing import Final

from orchestrator import defaults
from orchestrator.cloud.client import CIClient
from orchestrator.cloud.models import JobDetail, JobState, Queue
from orchestrator.cloud.retry import Retrier
from orchestrator.engine.breaker import Breaker, Trip
from orchestrator.engine.flow import Outstanding
from orchestrator.engine.reconcile import Reconciler
from orchestrator.engine.submitter import JobTemplate, Submitter
from orchestrator.engine.tracker import Tracker
from orchestrator.ledger import Ledger
from orchestrator.manifest import JobConfig, Manifest

__all__ = ["Processing", "job_template", "job_templates"]

log = logging.getLogger(__name__)

# Passes at the end of a round when only failed lookups are left, each waiting one settle gap
# longer than the last (about 20 s in all at the default gap) before the run gives up and exits
# 75 with those items unknown for the next run.
SETTLE_RETRIES: Final = 8


def job_templates(manifest: Manifest, queue: Queue) -> dict[str, JobTemplate]:
    """The request template of each of the manifest's jobs, by job name."""
    return {job.name: job_template(job, queue) for job in manifest.jobs}


def job_template(job: JobConfig, queue: Queue) -> JobTemplate:
    return JobTemplate(
        queue_id=queue.queue_id,
        template_id=job.template_id,
        process_rule=job.process_rule,
        is_pic_info=job.is_pic_info,
        callback=job.callback,
        callback_format=job.callback_format,
        callback_type=job.callback_type,
        callback_mq=job.callback_mq,
    )


class Processing:
    """One run's submitter, tracker, reconciler and failure breaker, and the events that stop
    them: `halt` stops submission, `quit_tracking` stops tracking too."""

    def __init__(
        self,
        manifest: Manifest,
        ledger: Ledger,
        client: CIClient,
        queue: Queue,
        retrier: Retrier,
        *,
        queue_fill: float = 0.9,
        poll_min: float = 0.5,
        poll_max: float = 30.0,
        grace: float = 300.0,
        jobs: frozenset[str] | None = None,
        settle_every: float = 0.5,
        settle_after: float = 2.0,
        settle_gap: float = 0.5,
        spot_gap: float = 0.5,
    ) -> None:
        self.ledger = ledger
        self.jobs = jobs  # the jobs to submit items of; None for all
        self.retrier = retrier
        self.grace = grace
        self.halt = asyncio.Event()
        self.quit_tracking = asyncio.Event()
        self.deadline_reached = False
        self.message = ""
        self.breaker = Breaker(manifest.limits)
        cap = int((queue.max_size or defaults.QUEUE_MAX_SIZE) * queue_fill)
        if manifest.shard is not None:  # N shards share one queue
            cap = manifest.shard.queue_share(cap)
        outstanding = Outstanding(cap, ledger.outstanding_count())
        self.outstanding = outstanding
        self.submitter = Submitter(
            client,
            ledger,
            job_templates(manifest, queue),
            outstanding,
            retrier=retrier,
            jobs=jobs,
            concurrency=manifest.limits.concurrency,
            on_failure=self.failed,
            pace=lambda: _current_rate(client),
            stragglers=client.settings.max_stragglers > 0,
            max_stragglers=client.settings.max_stragglers,
            refill=self._refill,
        )
        self.tracker = Tracker(
            client,
            ledger,
            outstanding,
            retrier=retrier,
            poll_min=poll_min,
            poll_max=poll_max,
            on_final=self.finished,
        )
        self.reconciler = Reconciler(client, ledger, queue.queue_id, retrier=retrier)
        # While items are being sent, unknown outcomes are settled every `settle_every`
        # seconds: an item left unknown late in a round otherwise waits for the round's end,
        # and the run's tail is made of such items. Frequent passes hold few items each, which
        # are looked up one by one (`reconcile.FEW`) rather than by listing their window, so
        # that the same pages are not listed pass after pass. Once nothing is left to claim,
        # the submitter waits on settling, which then runs every `settle_gap`.
        self.settle_every = settle_every
        self.settle_gap = settle_gap
        # How long an item stays unknown before it is looked up: its request, given up on,
        # may still be on its way to CI.
        self.settle_after = settle_after
        # Requests that straggle (their answers lost, most likely) are looked up every
        # `spot_gap` seconds while they last: a job one of them made is adopted at once, rather
        # than after its read timeout, `settle_after` and a settling pass.
        self.spot_gap = spot_gap
        self._settling = asyncio.Lock()
        self._unsettled = 0  # items the last pass could not look up (their lookups failed)
        self._timers: list[asyncio.TimerHandle] = []

    @property
    def trip(self) -> Trip | None:
        return self.breaker.trip

    # -- what the breaker hears --

    def failed(self, code: str, message: str) -> bool:
        if self.breaker.failure(code, message):
            log.error("failure breaker tripped: %s", self.breaker.trip)
            self.halt.set()
        return self.breaker.tripped

    def finished(self, detail: JobDetail) -> None:
        if detail.state == JobState.SUCCESS:
            self.breaker.success()
        elif detail.state == JobState.FAILED:
            self.failed(detail.code or "", detail.message or "")

    # -- the deadline --

    def set_deadline(self, at: float) -> None:
        """Stop submitting at `at` (time.monotonic()), and tracking `grace` seconds later."""
        left = at - time.monotonic()
        if left > 0:
            self._timers.append(asyncio.get_running_loop().call_later(left, self._deadline))
        else:
            self._deadline()

    def _deadline(self) -> None:
        self.deadline_reached = True
        log.warning(
            "deadline reached: no new submissions; tracking running jobs for up to %gs",
            self.grace,
        )
        self.halt.set()
        loop = asyncio.get_running_loop()
        self._timers.append(loop.call_later(self.grace, self.quit_tracking.set))

    # -- the work --

    async def run(self, stop: asyncio.Event, *, wait: bool = True) -> None:
        """Submit until done or halted while tracking (unless not `wait`); `stop` halts both."""
        relay = asyncio.create_task(_relay(stop, self.halt, self.quit_tracking))
        submitting = asyncio.Event()
        submitting.set()
        tracking = (
            asyncio.create_task(self.tracker.run(submitting, self.quit_tracking)) if wait else None
        )
        try:
            await self._submit_all()
            submitting.clear()
            self.tracker.wake()
            if tracking is not None:
                await tracking
        finally:
            submitting.clear()
            for timer in self._timers:
                timer.cancel()
            relay.cancel()
            if tracking is not None and not tracking.done():
                tracking.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await tracking
        if self.breaker.trip is not None:
            self.message = f"failure breaker tripped: {self.breaker.trip}"

    async def _submit_all(self) -> None:
        """Rounds of submission while unknown outcomes are settled beside them; each round ends
        by settling what it left unknown, since a settled item may go back to pending."""
        settling = asyncio.create_task(self._settle_meanwhile())
        spotting = asyncio.create_task(self._spot_meanwhile())
        try:
            while not self.halt.is_set():
                await self.submitter.run(self.halt)
                self.tracker.wake()
                await self._settle(min_age=self.settle_after)
                failed_passes = 0
                while (self.reconciler.waiting or self._unsettled) and not self.halt.is_set():
                    gap = self.settle_gap / 4
                    if not self.reconciler.waiting:
                        # Only lookups that failed are left: try again, more slowly each time,
                        # rather than end the run with items a moment of faults left unknown.
                        failed_passes += 1
                        if failed_passes > SETTLE_RETRIES or self.retrier.exhausted:
                            break
                        gap = self.settle_gap * failed_passes
                    await asyncio.sleep(gap)
                    await self._settle(min_age=self.settle_after)
                if self.halt.is_set():
                    await self._settle()  # the next run would have to, later and blind
                if self.retrier.exhausted:
                    error = self.submitter.stats.last_error
                    self.message = f"stopped submitting: CI kept refusing requests ({error})"
                    log.error(self.message)
                    return
                if self.ledger.pending_count(self.jobs) == 0:
                    return
        finally:
            for task in (settling, spotting):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _refill(self, stop: asyncio.Event) -> bool:
        """The submitter has no pending item left: settle what its requests left unknown as
        their outcomes come in, and hand back the items that went back to pending at once,
        rather than after a whole round. False once nothing is in flight or waiting to be
        settled (what could not be looked up is settled again after the round)."""
        last = -math.inf
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            in_flight = self.submitter.in_flight
            self.submitter.flush()
            if self.ledger.pending_count(self.jobs):
                return True  # released by the pass beside submission: sent before another
            # Each pass lists the window back to the oldest item it settles: while requests
            # are still out (more unknowns to come) one pass a `settle_gap` at most, so that
            # the same pages are not listed over and over; at once when none is.
            if not in_flight or loop.time() - last >= self.settle_gap:
                last = loop.time()
                await self._settle(min_age=self.settle_after)
                if self.ledger.pending_count(self.jobs):
                    return True
                if not in_flight and not self.reconciler.waiting:
                    return False
            await _first_of_timeout(stop, self.settle_gap / 4)
        return False

    async def _settle_meanwhile(self) -> None:
        """Settle unknown outcomes every `settle_every` seconds, so that neither waits for
        the other: items whose outcome is known keep being sent meanwhile."""
        while True:
            await self._settle(min_age=self.settle_after)
            await asyncio.sleep(self.settle_every)

    async def _spot_meanwhile(self) -> None:
        """Look the straggling submissions up as they straggle (an answer lost on its way back
        follows its job), and again every `spot_gap` while some are left."""
        straggled = self.submitter.straggled
        while True:
            await straggled.wait()
            straggled.clear()
            await self._spot()
            await asyncio.sleep(self.spot_gap)
            if self.submitter.straggling() or self.submitter.unanswered(self.settle_after):
                straggled.set()

    async def _spot(self) -> None:
        """Look up the stragglers, and the items whose requests ended unanswered too recently
        to be settled: a job found is adopted; nothing is released here."""
        stragglers = self.submitter.straggling()
        unanswered = self.submitter.unanswered(self.settle_after)
        if not stragglers and not unanswered:
            return
        stats = self.submitter.stats
        offsets = stats.clock_offsets
        skew = None if offsets is None else max(abs(offsets[0]), abs(offsets[1]))
        self.submitter.flush()  # the unanswered items' outcomes: only unknown ones are adopted
        found = await self.reconciler.spot([*stragglers, *unanswered], skew=skew)
        pairs = [(item.item_id, job.job_id) for item, job in found]
        straggling = {item.item_id for item, _ in stragglers}
        adopted = self.submitter.adopt([pair for pair in pairs if pair[0] in straggling])
        unknown = [pair for pair in pairs if pair[0] not in straggling]
        self.submitter.forget_unanswered([item_id for item_id, _ in unknown])
        settled = self.reconciler.adopt_unknown(
            unknown, sent=stats.unknown_sent, given_up=stats.unknown_at
        )
        self.outstanding.add(settled)  # counted out when their outcomes became unknown
        if adopted or settled:
            log.info("adopted %d jobs of submissions left unanswered", adopted + settled)
            self.reconciler.spotted += adopted
            self.tracker.wake()

    async def _settle(self, *, min_age: float = 0.0) -> None:
        async with self._settling:
            since = self.ledger.unknown_since()
            if since is None:
                self.reconciler.waiting = 0  # those it left may have been adopted since
                self._unsettled = 0
                return
            adopted = self.reconciler.adopted
            stats = self.submitter.stats
            offsets = stats.clock_offsets
            self._unsettled = await self.reconciler.settle(
                since,
                datetime.now(UTC),
                min_age=min_age,
                sent=stats.unknown_sent,
                given_up=stats.unknown_at,
                skew=None if offsets is None else max(abs(offsets[0]), abs(offsets[1])),
            )
            self.outstanding.add(self.reconciler.adopted - adopted)
            self.tracker.wake()


def _current_rate(client: CIClient) -> float | None:
    """The limiter's rate of the moment, if the client is paced by one that tells."""
    rate = getattr(client.limiter, "rate", None)
    return float(rate) if isinstance(rate, int | float) else None


async def _first_of_timeout(event: asyncio.Event, seconds: float) -> None:
    """Wait until `event` is set, at most `seconds`."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


async def _relay(stop: asyncio.Event, *events: asyncio.Event) -> None:
    await stop.wait()
    for event in events:
        event.set()
