"""Settling submissions whose outcome is unknown, before anything is resent.

CI has no idempotency token, so a POST that may have created a job is looked up among the
queue's jobs of a creation-time window around the submissions and matched on its input and
output objects. A match is adopted; only an item with no match goes back to pending.

All the unknown items of a window settle with one paged listing of the queue for that window
(`GET /pic_jobs` by `queueId` and `startCreationTime`/`endCreationTime`, 100 jobs a page),
matched locally: 200 unknown items among 1,000 jobs cost 10 requests, not 200. A listing is
only worth it while the window holds fewer pages than there are items to settle; when the
first pages show it would take more (a busy queue, a long window), the rest are looked up one
by one by input object, so the cost is never much above one request per item. A few items
(`FEW`) are looked up one by one from the start, side by side: as many requests as a few
seconds of a busy queue's pages, in the time of one request rather than of a chain of pages.

Submissions still waiting for their answers past the point where answers are normally back
(stragglers: their answers lost, most likely) are looked up too (`spot`), and a job found is
adopted at once; one not found is never taken for absent, as the request may still be on its
way. Only what a request ends with is a reason to send an item again.

A listing's pages follow one another (each needs the last one's NextToken), so a window around
the sender's own submissions is cut into spans of a few seconds listed side by side, and a page
whose answer straggles is asked for again at once (`orchestrator.cloud.hedge`): settling is on
the run's critical path at its end, when the last items wait for it to be sent again.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from orchestrator.cloud.client import CIClient
from orchestrator.cloud.hedge import hedged
from orchestrator.cloud.models import JobDetail
from orchestrator.cloud.retry import Retrier
from orchestrator.engine.tracker import parse_ci_time
from orchestrator.exceptions import CIError
from orchestrator.items import Item
from orchestrator.ledger import ClaimedItem, Ledger

__all__ = ["Reconciler", "ci_time"]

log = logging.getLogger(__name__)

PAGE_SIZE = 100  # the most CI returns in one page
# Beyond the clock offset measured: CreationTime's whole seconds, and the answer's latency.
SKEW_SLACK = 2.0
# The shortest span of a window listed beside the others (s): the overlap that makes the
# listing right whichever way CI reads the bounds costs up to two seconds of jobs per span.
MIN_SPAN = 5
# At most this many items are looked up one by one rather than listed with their window: about
# as many requests as the pages of a few seconds of a busy queue (300 jobs a second are three
# pages a second), and sent side by side, where a listing's pages follow one another.
FEW = 64

_Pair = tuple[str, str]


def ci_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S%z")


@dataclass
class _Listing:
    """What a listing gathered: jobs by (input, output), each job once, and the pages it took."""

    found: dict[_Pair, list[JobDetail]] = field(default_factory=lambda: defaultdict(list))
    seen_jobs: set[str] = field(default_factory=set)
    pages: int = 0


def _spans(window: tuple[datetime, datetime], most: int) -> list[tuple[datetime, datetime]]:
    """`window` cut into at most `most` spans of whole seconds, at least MIN_SPAN long, each
    beginning one second before the last one ends (inclusive or exclusive bounds, every
    second is in one of them)."""
    start = window[0].replace(microsecond=0)
    seconds = math.ceil((window[1] - start).total_seconds())
    count = max(1, min(most, seconds // MIN_SPAN))
    cuts = [start + timedelta(seconds=seconds * i // count) for i in range(count + 1)]
    one = timedelta(seconds=1)
    return [(cuts[i] - one if i else cuts[i], cuts[i + 1]) for i in range(count)]


def _pair(input_object: str, output_object: str) -> _Pair:
    return input_object.lstrip("/"), output_object.lstrip("/")


class Reconciler:
    def __init__(
        self,
        client: CIClient,
        ledger: Ledger,
        queue_id: str,
        *,
        retrier: Retrier,
        margin: timedelta = timedelta(minutes=10),
        concurrency: int = 8,
        few: int = FEW,
        lookups: int = 16,
        batch: int = 5000,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] | None = None,
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.queue_id = queue_id
        self.retrier = retrier
        self.margin = margin
        self.concurrency = concurrency  # spans listed side by side
        self.few = few
        self.lookups = lookups  # items looked up side by side
        self.batch = batch
        self.adopted = 0  # by settling
        self.spotted = 0  # found while their requests were young: stragglers, unanswered
        self.released = 0
        self.list_requests = 0
        self.waiting = 0  # items the last pass left for being too recently unknown
        self._first_seen: dict[str, float] = {}
        self._clock = clock
        self._wall = wall or (lambda: datetime.now(UTC))

    def _old_enough(
        self,
        items: Sequence[ClaimedItem],
        min_age: float,
        given_up: Mapping[str, float] | None = None,
    ) -> list[ClaimedItem]:
        now = self._clock()
        known = given_up or {}
        first = [
            self._first_seen.setdefault(item.item_id, known.get(item.item_id, now))
            for item in items
        ]
        return [item for item, seen in zip(items, first, strict=True) if now - seen >= min_age]

    async def settle(
        self,
        since: datetime,
        now: datetime,
        *,
        min_age: float = 0.0,
        sent: MutableMapping[str, datetime] | None = None,
        skew: float | None = None,
        given_up: MutableMapping[str, float] | None = None,
    ) -> int:
        """Settle every unknown item; return how many are still unsettled (lookups failed).

        With `min_age`, items this reconciler first saw unknown less than `min_age` seconds ago
        are left for a later pass: a request given up on a moment ago may still be on its way.
        The window reaches `margin` back from `since`, the oldest item's last change; when
        `sent` knows when every item of a batch was sent and `skew` bounds how far CI's clock
        is from ours (seconds), it starts at the earliest of those sends, less the skew; settled
        items leave `sent`. `given_up` says when (on the reconciler's clock) the sender gave up
        on an item's request, from when its `min_age` counts (else from when a pass first sees
        it, one pass late); settled items leave it too.
        """
        wide = (since - self.margin, now + self.margin)
        unsettled = 0
        self.waiting = 0
        while True:
            # Items read now were made unknown before now: a window closing at an earlier
            # `now` could miss a job created by a request given up on after it.
            now = max(now, self._wall())
            wide = (wide[0], max(wide[1], now + self.margin))
            batch = self.ledger.unknown_items(self.batch)
            if not batch:
                break
            items = self._old_enough(batch, min_age, given_up)
            self.waiting = len(batch) - len(items)
            if not items:
                break
            window, first, narrow = wide, since, False
            if sent is not None and skew is not None and all(i.item_id in sent for i in items):
                slack = timedelta(seconds=skew + SKEW_SLACK)
                first = min(sent[item.item_id] for item in items)
                window, narrow = (first - slack, now + slack), True
            found = await self._find_all(items, window, first, now, split=narrow)
            adopt, release = [], []
            for item, job in zip(items, found, strict=True):
                if isinstance(job, CIError):
                    log.warning("could not look up %r: %s; it stays unknown", item.key, job)
                    unsettled += 1
                elif job is None:
                    release.append(item.item_id)
                else:
                    adopt.append((item.item_id, job.job_id))
            for item_id in (*(pair[0] for pair in adopt), *release):
                self._first_seen.pop(item_id, None)
                if sent is not None:
                    sent.pop(item_id, None)
                if given_up is not None:
                    given_up.pop(item_id, None)
            self.adopted += self.ledger.adopt(adopt) if adopt else 0
            self.released += self.ledger.release(release) if release else 0
            if not adopt and not release:
                break  # every lookup failed; try again later rather than spin
            if len(batch) < self.batch:
                # Every item unknown when this batch was read has had its pass. Those made
                # unknown since (requests given up on meanwhile) wait for the next call: going
                # on would list the same recent pages again for every few new ones.
                break
        return unsettled

    async def spot(
        self, stragglers: Sequence[tuple[Item, datetime]], *, skew: float | None = None
    ) -> list[tuple[Item, JobDetail]]:
        """The jobs that submissions still waiting for their answers (`stragglers`: each item
        and when its request was sent) have made already: an answer lost on its way back is
        then known for what it is before the request times out. Each item is looked up by its
        input object (a few stragglers cost fewer requests than a listing of their window);
        an item not found, or whose lookup failed, is simply not in the answer: nothing is
        released here, as its request may still be on its way."""
        if not stragglers:
            return []
        now = max(self._wall(), max(sent for _, sent in stragglers))
        slack = self.margin if skew is None else timedelta(seconds=skew + SKEW_SLACK)
        start = ci_time(min(sent for _, sent in stragglers) - slack)
        end = ci_time(now + slack)
        sem = asyncio.Semaphore(self.lookups)

        async def find(item: Item) -> JobDetail | None:
            async with sem:
                try:
                    return self._pick(item, await self._lookup(item, start, end))
                except CIError as exc:
                    log.info("could not look up straggling %r: %s", item.key, exc)
                    return None

        found = await asyncio.gather(*(find(item) for item, _ in stragglers))
        return [(item, job) for (item, _), job in zip(stragglers, found, strict=True) if job]

    def adopt_unknown(
        self,
        pairs: Sequence[tuple[str, str]],
        *,
        sent: MutableMapping[str, datetime] | None = None,
        given_up: MutableMapping[str, float] | None = None,
    ) -> int:
        """(item_id, job_id) found by `spot` for items of unknown outcome: adopted if they are
        still unknown (a pass may have released one meanwhile). Returns how many were."""
        adopted = self.ledger.adopt_unknown(pairs) if pairs else 0
        for item_id, _ in pairs:
            self._first_seen.pop(item_id, None)
            if sent is not None:
                sent.pop(item_id, None)
            if given_up is not None:
                given_up.pop(item_id, None)
        self.spotted += adopted
        return adopted

    async def _find_all(
        self,
        items: Sequence[ClaimedItem],
        window: tuple[datetime, datetime],
        since: datetime,
        now: datetime,
        *,
        split: bool = False,
    ) -> list[JobDetail | CIError | None]:
        listed = None
        try:
            if len(items) <= self.few:
                pass  # looked up side by side below: one request's time, not a chain of pages
            elif split:
                listed = await self._list_spans(window, since, now, budget=len(items))
            else:
                listed = await self._list_window(window, since, now, budget=len(items))
        except CIError as exc:
            log.info("listing the queue failed (%s); looking items up one by one", exc)
        if listed is not None:
            return [
                self._pick(item, listed.get(_pair(item.key, item.output_key), [])) for item in items
            ]
        start, end = ci_time(window[0]), ci_time(window[1])
        sem = asyncio.Semaphore(self.lookups)

        async def find(item: ClaimedItem) -> JobDetail | CIError | None:
            async with sem:
                try:
                    return self._pick(item, await self._lookup(item, start, end))
                except CIError as exc:
                    return exc

        return list(await asyncio.gather(*(find(item) for item in items)))

    async def _list_spans(
        self, window: tuple[datetime, datetime], since: datetime, now: datetime, *, budget: int
    ) -> dict[_Pair, list[JobDetail]] | None:
        """As `_list_window`, with the window cut into spans of whole seconds listed side by
        side: a listing's pages follow one another (each needs the last one's token), spans
        do not. CI's documents disagree on whether the bounds are inclusive, so each span
        starts a second before the last one ends; jobs listed twice are counted once."""
        spans = _spans(window, min(self.concurrency, budget))
        if len(spans) == 1:
            return await self._list_window(window, since, now, budget=budget)
        listing = _Listing()  # shared by the spans: together they stay within `budget`
        tasks = [
            asyncio.ensure_future(self._list_window(span, since, now, budget=budget, into=listing))
            for span in spans
        ]
        try:
            listed = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return None if any(part is None for part in listed) else listing.found

    async def _list_window(
        self,
        window: tuple[datetime, datetime],
        since: datetime,
        now: datetime,
        *,
        budget: int,
        into: _Listing | None = None,
    ) -> dict[_Pair, list[JobDetail]] | None:
        """The queue's jobs of the window by (input, output), or None if listing them would
        take more than `budget` pages (`into`: where spans listed side by side gather them)."""
        start, end = window
        # The margins are there for clock skew and are mostly empty of our jobs: the pages are
        # projected over the submissions' own span, and `budget` caps the rest.
        span = max(1.0, (now - since).total_seconds())
        listing = into or _Listing()
        seen_tokens: set[str] = set()
        token = ""
        while True:
            if listing.pages >= budget:
                return None
            page = await self.retrier.call(
                lambda token=token: hedged(  # type: ignore[misc]
                    lambda: self.client.list_jobs_page(
                        queue_id=self.queue_id,
                        start_creation_time=ci_time(start),
                        end_creation_time=ci_time(end),
                        size=PAGE_SIZE,
                        next_token=token,
                    )
                ),
                idempotent=True,
                name="reconcile",
            )
            listing.pages += 1
            self.list_requests += 1
            oldest: datetime | None = None
            for job in page.jobs:
                if job.job_id in listing.seen_jobs:
                    continue
                listing.seen_jobs.add(job.job_id)
                listing.found[_pair(job.input_object, job.output_object)].append(job)
                created = parse_ci_time(job.creation_time)
                if created is not None and (oldest is None or created < oldest):
                    oldest = created
            # Where the token on the last page is empty, absent or repeated is not documented:
            # any of them, or an empty page, ends the listing.
            if not page.next_token or page.next_token in seen_tokens or not page.jobs:
                return listing.found
            seen_tokens.add(page.next_token)
            token = page.next_token
            # Pages come newest first: from how far back they reach, project the whole listing
            # (spans listed side by side are held to `budget` by their shared count instead).
            if into is None and oldest is not None:
                covered = (now - oldest).total_seconds()
                if covered > 0 and listing.pages * span / covered > budget:
                    return None

    async def _lookup(self, item: Item, start: str, end: str) -> list[JobDetail]:
        async def lookup() -> list[JobDetail]:
            return [
                job
                async for job in self.client.list_jobs(
                    queue_id=self.queue_id,
                    start_creation_time=start,
                    end_creation_time=end,
                    input_object=item.key,
                )
            ]

        self.list_requests += 1
        return await self.retrier.call(lambda: hedged(lookup), idempotent=True, name="reconcile")

    def _pick(self, item: Item, jobs: Sequence[JobDetail]) -> JobDetail | None:
        """The job CI made for this item's submission among `jobs`, if there is one."""
        if not jobs:
            return None
        # A job this item had before (a failed one before --retry-failed, a successful one
        # before its object changed) is not the answer to this submission.
        earlier = self.ledger.past_job_ids(item.item_id)
        wanted = _pair(item.key, item.output_key)
        matches = [
            job
            for job in jobs
            if job.job_id not in earlier
            and _pair(job.input_object, job.output_object) == wanted
            and (not job.output_bucket or job.output_bucket == item.output_bucket)
        ]
        if len(matches) > 1:
            log.warning("%d jobs found for %r; adopting the earliest", len(matches), item.key)
        matches.sort(key=lambda job: job.creation_time or "")
        return matches[0] if matches else None
