"""`picjobs check`: everything a night's run needs, verified now, without making a job.

Each check gives one `Check`: ok, FAIL (with what to do) or skip (an earlier failure left
nothing to check with). The order is the order a run meets them: credentials, clock, bucket
and source, CI, queue, template, rate.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from itertools import islice
from typing import Any

from orchestrator.cloud.client import CIClient
from orchestrator.cloud.credentials import CredentialProvider
from orchestrator.cloud.models import JobState, Queue, QueueState
from orchestrator.cloud.retry import Retrier, RetryPolicy
from orchestrator.engine.queue import get_queue, list_queues
from orchestrator.exceptions import CIError, PicjobsError, ServiceError
from orchestrator.manifest import Manifest
from orchestrator.sources.csv import iter_csv
from orchestrator.tencent import region_quota

__all__ = ["MAX_SKEW", "POLICY", "Check", "Status", "preflight"]

MAX_SKEW = 300.0
_AUTH_CODES = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "SecretidNotExist",
        "InvalidAuthorization",
        "ExpiredToken",
    }
)
# A check answers in seconds: one retry of a passing hiccup, not a run's patience.
POLICY = RetryPolicy(attempts=2, wait_initial=0.5, wait_max=2.0, timeout=30.0)
# Counting the queue's waiting jobs reads at most this many pages of 100.
_PAGES = 10


class Status(enum.StrEnum):
    OK = "ok"
    FAIL = "FAIL"
    SKIP = "skip"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "status": self.status.value,
            "detail": self.detail,
            "fix": self.fix,
        }


def _ok(name: str, detail: str) -> Check:
    return Check(name, Status.OK, detail)


def _fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, Status.FAIL, detail, fix)


def _refused(name: str, exc: CIError, fix: str) -> Check:
    if isinstance(exc, ServiceError) and exc.error_code in _AUTH_CODES:
        return _fail(
            name,
            f"refused: {exc}",
            "check the SecretId/SecretKey (or the role's policy): it needs COS read and"
            " ci:DescribePicProcessQueues / ci:CreateMediaJobs",
        )
    return _fail(name, str(exc), fix)


async def preflight(
    manifest: Manifest,
    resolve: Callable[[], Awaitable[CredentialProvider]],
    connect: Callable[[CredentialProvider], CIClient],
    *,
    retrier: Retrier | None = None,
    local_clock: Callable[[], float] = time.time,
) -> list[Check]:
    """Every check after the manifest's (the caller loaded it); never raises a PicjobsError.
    Every call is a read, retried by `retrier` (default: POLICY)."""
    retrier = retrier or Retrier(POLICY)
    checks = [_ok("manifest", f"{manifest.path.name}: valid")]
    try:
        provider = await resolve()
    except PicjobsError as exc:
        checks.append(
            _fail(
                "credentials",
                str(exc),
                "set [target] credentials, or provide keys, a profile or a role (README)",
            )
        )
        names = ("clock", "bucket", "ci", "queue", "template")
        checks += [Check(name, Status.SKIP, "needs credentials") for name in names]
        checks.append(_rate(manifest))
        return checks
    checks.append(_ok("credentials", provider.describe()))
    async with connect(provider) as client:
        bucket = await _bucket(manifest, client, retrier)
        checks.append(_clock(client, local_clock))
        checks.append(bucket)
        checks.append(await _ci(manifest, client, retrier))
        checks.append(await _queue(manifest, client, retrier))
        checks.append(await _template(manifest, client, retrier))
    checks.append(_rate(manifest))
    return checks


def _clock(client: CIClient, local_clock: Callable[[], float]) -> Check:
    if client.last_date is None:
        return Check("clock", Status.SKIP, "no answer carried the service's time")
    try:
        # The header has whole seconds: the service's time is within the second it names.
        service = parsedate_to_datetime(client.last_date).timestamp() + 0.5
    except (TypeError, ValueError, IndexError):
        return Check("clock", Status.SKIP, "the service's Date header is unreadable")
    skew = local_clock() - service
    if abs(skew) > MAX_SKEW:
        return _fail(
            "clock",
            f"this host's clock is {skew:+.0f} s off the service's",
            "synchronise it (chrony or systemd-timesyncd against ntpupdate.tencentyun.com)",
        )
    return _ok("clock", f"within {max(abs(skew), 1):.0f} s of the service's")


async def _bucket(manifest: Manifest, client: CIClient, retrier: Retrier) -> Check:
    source, bucket = manifest.source, manifest.target.bucket

    async def read(fn: Callable[[], Awaitable[Any]], name: str) -> Any:
        return await retrier.call(fn, idempotent=True, name=name)

    try:
        if source.kind == "prefix":
            page = await read(
                lambda: client.list_objects_page(prefix=source.prefix or "", max_keys=10), "list"
            )
            shown = f"prefix {source.prefix!r}" if source.prefix else "the whole bucket"
            found = (
                f"{len(page.entries)}{'+' if page.is_truncated else ''} objects on the first page"
            )
            return _ok("bucket", f"{bucket}: {shown} readable, {found}")
        if source.kind == "csv":
            assert source.csv_path is not None
            first = next(islice(iter_csv(source.csv_path, bucket), 1), None)
            if first is None:
                return _fail("bucket", f"{source.csv_path.name} lists no object", "fill the CSV")
            page = await read(
                lambda: client.list_objects_page(prefix=first.key, max_keys=1), "list"
            )
            if not any(entry.key == first.key for entry in page.entries):
                return _fail(
                    "bucket",
                    f"{first.bucket}: the CSV's first object {first.key!r} does not exist",
                    "check the CSV's keys and [target] bucket",
                )
            return _ok("bucket", f"{bucket}: the CSV's first object {first.key!r} exists")
        assert source.inventory_key is not None
        key = source.inventory_key
        await read(lambda: client.get_object(key), "inventory manifest")
        return _ok("bucket", f"{bucket}: the inventory manifest {key!r} is readable")
    except PicjobsError as exc:
        if isinstance(exc, CIError):
            if isinstance(exc, ServiceError) and exc.error_code == "NoSuchBucket":
                return _fail(
                    "bucket",
                    f"{bucket} does not exist in {manifest.target.region}",
                    "check [target] bucket (with its -APPID suffix) and region",
                )
            return _refused("bucket", exc, "check [target] bucket, region and endpoint")
        return _fail("bucket", str(exc), "fix the source file")


async def _ci(manifest: Manifest, client: CIClient, retrier: Retrier) -> Check:
    try:
        queues: list[Queue] = await list_queues(client, retrier)
    except CIError as exc:
        return _refused("ci", exc, "enable CI (数据万象) for the bucket in the console")
    if not queues:
        return _fail(
            "ci",
            f"bucket {manifest.target.bucket} has no pic-processing queue",
            "enable CI image processing for the bucket in the console",
        )
    return _ok("ci", f"enabled for {manifest.target.bucket} ({len(queues)} pic queues)")


async def _queue(manifest: Manifest, client: CIClient, retrier: Retrier) -> Check:
    wanted = manifest.target.queue_id
    try:
        if wanted:
            queue = await get_queue(client, retrier, wanted)
            if queue is None:
                return _fail(
                    "queue",
                    f"{wanted} does not exist",
                    "check [target] queue_id (picjobs queue list)",
                )
        else:
            queues = await list_queues(client, retrier)
            if not queues:
                return Check("queue", Status.SKIP, "no queue to check")
            queue = next((q for q in queues if q.state == QueueState.ACTIVE), queues[0])
        if queue.state != QueueState.ACTIVE:
            return _fail(
                "queue",
                f"{queue.queue_id} is {queue.state}",
                f"picjobs queue resume {queue.queue_id}, or run with --resume-queue",
            )
        waiting = await _waiting(client, retrier, queue.queue_id)
    except CIError as exc:
        return _refused("queue", exc, "check [target] queue_id")
    size = queue.max_size
    if size is not None and waiting >= size:
        return _fail(
            "queue",
            f"{queue.queue_id} is full ({waiting} of {size} waiting)",
            "wait for it to drain, or raise its size in the console",
        )
    room = "" if size is None else f", room for {size - waiting} of {size}"
    return _ok("queue", f"{queue.queue_id} is Active{room}")


async def _waiting(client: CIClient, retrier: Retrier, queue_id: str) -> int:
    count, token = 0, ""
    for _ in range(_PAGES):
        page = await retrier.call(
            lambda token=token: client.list_jobs_page(  # type: ignore[misc]
                queue_id=queue_id, states=JobState.SUBMITTED, next_token=token
            ),
            idempotent=True,
            name="list jobs",
        )
        count += len(page.jobs)
        if not page.next_token or not page.jobs:
            break
        token = page.next_token
    return count


async def _template(manifest: Manifest, client: CIClient, retrier: Retrier) -> Check:
    """Every template a job of the manifest names exists."""
    wanted = [job.template_id for job in manifest.jobs if job.template_id]
    if not wanted:
        return Check("template", Status.SKIP, "the manifest uses process_rule")
    for template_id in dict.fromkeys(wanted):
        try:
            exists = await retrier.call(
                lambda tid=template_id: client.template_exists(tid),  # type: ignore[misc]
                idempotent=True,
                name="template",
            )
        except CIError as exc:
            return _refused("template", exc, "check [job] template_id")
        if not exists:
            return _fail(
                "template",
                f"{template_id} does not exist",
                "check [job] template_id against the console's template list",
            )
    return _ok(
        "template",
        f"{', '.join(dict.fromkeys(wanted))} exist"
        if len(set(wanted)) > 1
        else f"{wanted[0]} exists",
    )


def _rate(manifest: Manifest) -> Check:
    rate, region = manifest.limits.rate, manifest.target.region
    quota = region_quota(region)
    if rate > quota:
        return _fail(
            "rate",
            f"[limits] rate {rate:g}/s exceeds {region}'s quota of {quota:g}/s",
            f"lower [limits] rate to {quota:g} or less, or ask Tencent Cloud for a higher quota",
        )
    return _ok("rate", f"{rate:g}/s within {region}'s quota of {quota:g}/s")
