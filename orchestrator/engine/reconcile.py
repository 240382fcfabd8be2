"""Settling submissions whose outcome is unknown, before anything is resent.

CI has no idempotency token, so a POST that may have created a job is looked up through the
list-jobs API (by queue, input object and a creation-time window) and matched on its input and
output objects. A match is adopted; only an item with no match goes back to pending.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from orchestrator.cloud.client import CIClient
from orchestrator.cloud.models import JobDetail
from orchestrator.cloud.retry import Retrier
from orchestrator.exceptions import CIError
from orchestrator.ledger import ClaimedItem, Ledger

__all__ = ["Reconciler", "ci_time"]

log = logging.getLogger(__name__)


def ci_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S%z")


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
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.queue_id = queue_id
        self.retrier = retrier
        self.margin = margin
        self.concurrency = concurrency
        self.adopted = 0
        self.released = 0

    async def settle(self, since: datetime, now: datetime) -> int:
        """Settle every unknown item; return how many are still unsettled (lookups failed)."""
        start, end = ci_time(since - self.margin), ci_time(now + self.margin)
        unsettled = 0
        sem = asyncio.Semaphore(self.concurrency)

        async def find(item: ClaimedItem) -> JobDetail | CIError | None:
            async with sem:
                try:
                    return await self._find(item, start, end)
                except CIError as exc:
                    return exc

        while items := self.ledger.unknown_items(200):
            found = await asyncio.gather(*(find(item) for item in items))
            adopt, release = [], []
            for item, job in zip(items, found, strict=True):
                if isinstance(job, CIError):
                    log.warning("could not look up %r: %s; it stays unknown", item.key, job)
                    unsettled += 1
                elif job is None:
                    release.append(item.item_id)
                else:
                    adopt.append((item.item_id, job.job_id))
            self.adopted += self.ledger.adopt(adopt) if adopt else 0
            self.released += self.ledger.release(release) if release else 0
            if not adopt and not release:
                break  # every lookup failed; try again later rather than spin
        return unsettled

    async def _find(self, item: ClaimedItem, start: str, end: str) -> JobDetail | None:
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

        jobs = await self.retrier.call(lookup, idempotent=True, name="reconcile")
        # A job this item had before (a failed one before --retry-failed, a successful one
        # before its object changed) is not the answer to this submission.
        earlier = self.ledger.past_job_ids(item.item_id)
        matches = [
            job
            for job in jobs
            if job.job_id not in earlier
            and job.input_object.lstrip("/") == item.key.lstrip("/")
            and job.output_object.lstrip("/") == item.output_key.lstrip("/")
            and (not job.output_bucket or job.output_bucket == item.output_bucket)
        ]
        if len(matches) > 1:
            log.warning("%d jobs found for %r; adopting the earliest", len(matches), item.key)
        matches.sort(key=lambda job: job.creation_time or "")
        return matches[0] if matches else None
