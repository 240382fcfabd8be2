"""skip_existing: no job for an object whose output already exists in the output bucket.

The outputs are found by listing, once per run and page by page, the literal prefix of the
job's output template (`thumbs/` for `thumbs/{dir}/{stem}.webp`; the whole bucket when the
template starts with a placeholder) into the ledger's temporary table, and compared there in
SQL: never a HEAD per object, never every key in memory. Only pending items are candidates.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import string
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from orchestrator.cloud.client import CIClient
from orchestrator.cloud.retry import Retrier
from orchestrator.items import ItemRecord
from orchestrator.ledger import Ledger, SkipRule, State
from orchestrator.manifest import JobConfig, SkipExisting
from orchestrator.sources.listing import iter_key_pages

__all__ = [
    "CODE",
    "SkipPreview",
    "SkipReport",
    "Skipping",
    "output_prefix",
    "preview_skip",
]

log = logging.getLogger(__name__)

CODE: Final = "OutputExists"


@dataclass
class SkipReport:
    """What skip_existing did for one job in one run."""

    mode: SkipExisting | None
    prefix: str
    listed: int = 0  # output objects listed under the prefix
    pages: int = 0  # listing requests that answered
    skipped: int = 0  # pending items now skipped
    unknown_time: int = 0  # of those, with "newer": inputs of unknown time, compared as "exists"
    forced: int = 0  # with --force: items skipped earlier, pending again


@dataclass(frozen=True)
class SkipPreview:
    """What skip_existing would do for one job, for a dry run."""

    mode: SkipExisting
    prefix: str
    force: bool
    listed: int  # output objects under the prefix
    existing: int  # items to process whose output exists: skipped, or with force processed again
    unknown_time: int  # of those, with "newer": inputs of unknown time, compared as "exists"


def output_prefix(template: str) -> str:
    """The literal text an output template starts with: every output key starts with it."""
    for literal, _field, _spec, _conversion in string.Formatter().parse(template):
        return literal
    return ""


class Skipping:
    """skip_existing for one job in one run: the listing of its outputs (a task, which a run
    on a new ledger starts before expanding, so that it overlaps the expansion) and then the
    comparison with the pending items."""

    def __init__(
        self,
        ledger: Ledger,
        client: CIClient,
        job: JobConfig,
        retrier: Retrier,
        *,
        force: bool,
    ) -> None:
        self.ledger = ledger
        self.client = client
        self.job = job
        self.retrier = retrier
        self.force = force
        self.job_name = job.label  # what the items' `job` column holds for this job
        self.report = SkipReport(job.skip_existing, output_prefix(job.output))
        self._listing: asyncio.Task[tuple[int, int]] | None = None
        # Every output key up to this one has been listed (the last key of the last page).
        self._through: str | None = None
        self._progress = asyncio.Event()  # set, and replaced, as a page is stored

    @property
    def lists(self) -> bool:
        return self.job.skip_existing is not None and not self.force

    @property
    def rule(self) -> SkipRule | None:
        """What a bulk load applies as it inserts the job's items (see `Ledger.loading`)."""
        mode = self.job.skip_existing
        if mode is None or self.force:
            return None
        return SkipRule(
            self.job_name, self.job.output_bucket, mode == "newer", CODE, _REASONS[mode]
        )

    def start_listing(self) -> None:
        if self.lists and self._listing is None:
            # Cleared now rather than in the task: a job listing the same bucket must not clear
            # what another job's listing, started before, has stored already.
            self.ledger.clear_outputs(self.job.output_bucket, self.report.prefix)
            listing = _list_outputs(
                self.ledger,
                self.client,
                self.job,
                self.report.prefix,
                self.retrier,
                on_page=self._listed,
            )
            self._listing = asyncio.create_task(listing)
            self._listing.add_done_callback(lambda _task: self._progress.set())

    def _listed(self, last_key: str | None) -> None:
        if last_key is not None:
            self._through = last_key
        self._progress.set()
        self._progress = asyncio.Event()

    async def listed(self, records: list[ItemRecord]) -> None:
        """Wait until the listing has reached the outputs of the job's items among `records`
        (or ended), so that a bulk load can insert them skipped or not for good. Listings come
        in key order: for inputs in key order too, the expansion follows the listing a page
        or so behind it; for others it waits at the first batch for the whole listing."""
        if self._listing is None:
            return
        bucket, job, prefix = self.job.output_bucket, self.job_name, self.report.prefix
        keys = [
            r[5] for r in records if r[11] == job and r[3] == bucket and r[5].startswith(prefix)
        ]
        if not keys:
            return
        last = max(keys)
        while not self._listing.done() and (self._through is None or self._through < last):
            await self._progress.wait()

    async def cancel(self) -> None:
        if self._listing is not None and not self._listing.done():
            self._listing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listing

    async def run(self) -> SkipReport:
        """Skip the pending items of the job whose output exists (per its `skip_existing`);
        with `force`, skip nothing and put the items skipped before back to pending."""
        report, job, ledger = self.report, self.job, self.ledger
        if self.force:
            report.forced = ledger.unskip(self.job_name)
            if report.forced or job.skip_existing:
                log.info(
                    "--force: skip_existing ignored this run; %d items skipped earlier queued again",
                    report.forced,
                )
            return report
        if job.skip_existing is None:
            return report
        if self._listing is None:
            if not ledger.pending_of(self.job_name):
                return report  # nothing to compare: no listing at all
            self.start_listing()
        assert self._listing is not None
        report.listed, report.pages = await self._listing
        newer = job.skip_existing == "newer"
        if newer:
            counted = ledger.count_listed(job.output_bucket, self.job_name, newer=True)
            loaded = ledger.count_loaded_skips(job.output_bucket, self.job_name)
            report.unknown_time = counted[1] + loaded[1]
        report.skipped = ledger.skip_listed(
            job.output_bucket,
            self.job_name,
            newer=newer,
            code=CODE,
            message=_REASONS[job.skip_existing],
        )
        log.info(
            "skip_existing = %r: %d objects listed under %s; %d items skipped%s",
            job.skip_existing,
            report.listed,
            _where(job.output_bucket, report.prefix),
            report.skipped,
            f' ({report.unknown_time} inputs of unknown time compared as "exists")'
            if report.unknown_time
            else "",
        )
        return report


async def preview_skip(
    plan: Ledger,
    client: CIClient,
    job: JobConfig,
    retrier: Retrier,
    *,
    force: bool,
    real: Path | None,
) -> SkipPreview | None:
    """A dry run's view of skip_existing, from its scratch ledger `plan` (every item pending)
    and the manifest's `real` ledger (only read), or None when the job does not skip."""
    if job.skip_existing is None:
        return None
    prefix = output_prefix(job.output)
    plan.clear_outputs(job.output_bucket, prefix)
    listed, _pages = await _list_outputs(plan, client, job, prefix, retrier)
    existing, unknown = plan.count_listed(
        job.output_bucket,
        job.label,
        newer=job.skip_existing == "newer",
        unless_final_in=real,
        keep=State.SKIPPED if force else None,
    )
    if job.skip_existing != "newer":
        unknown = 0
    return SkipPreview(job.skip_existing, prefix, force, listed, existing, unknown)


_REASONS: Final[dict[SkipExisting, str]] = {
    "exists": "the output already exists (skip_existing)",
    "newer": "the output already exists and is not older than the input (skip_existing)",
}


def _where(bucket: str, prefix: str) -> str:
    return f"{bucket}/{prefix}" if prefix else f"{bucket} (the whole bucket: no literal prefix)"


async def _list_outputs(
    ledger: Ledger,
    client: CIClient,
    job: JobConfig,
    prefix: str,
    retrier: Retrier,
    *,
    on_page: Callable[[str | None], None] | None = None,
) -> tuple[int, int]:
    """List the output bucket under `prefix` into the ledger's temporary table (cleared by
    the caller), page by page, calling `on_page` with each page's last key once it is stored.
    Returns (objects, pages)."""
    listed = pages = 0
    async with AsyncExitStack() as stack:
        settings = client.settings
        if (job.output_bucket, job.output_region) != (settings.bucket, settings.region):
            replaced = dataclasses.replace(
                settings, bucket=job.output_bucket, region=job.output_region
            )
            client = await stack.enter_async_context(CIClient(replaced))
        async for page in iter_key_pages(client, prefix, retrier=retrier):
            pages += 1
            listed += len(page.rows)
            ledger.add_outputs(job.output_bucket, page.rows)
            if on_page is not None:
                on_page(page.last_key)
    return listed, pages
