"""`picjobs queue`: show a bucket's pic queues, pause or resume one, set its notifications.

Every subcommand needs the bucket and region (and, for an emulator, the endpoint): from
`--bucket/--region/--endpoint`, or from the `[target]` of `--manifest`; options win over the
manifest, and `PICJOBS_ENDPOINT` over the manifest's endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click

from orchestrator.cli._common import EMBEDDED, credentials, errors
from orchestrator.cloud import retry
from orchestrator.cloud.client import CIClient, ClientSettings
from orchestrator.cloud.models import Queue
from orchestrator.cloud.pacing import AdaptiveRateLimiter
from orchestrator.exceptions import UsageError
from orchestrator.manifest import load_manifest

__all__ = ["queue_group"]

T = TypeVar("T")

# Requests per second when no manifest gives [limits] rate: CI's documented default quota.
DEFAULT_RATE = 100.0
# The NotifyConfig fields `PUT /picqueue/<id>` accepts, in the order CI documents them.
NOTIFY_FIELDS = ("Url", "Event", "Type", "State", "ResultFormat", "MqMode", "MqRegion", "MqName")
EVENTS = ("TaskFinish", "WorkflowFinish")
MQ_REGIONS = ("sh", "bj", "gz", "cd", "hk")


@dataclass(frozen=True, slots=True)
class _Target:
    bucket: str
    region: str
    endpoint: str | None
    rate: float
    credentials: str = "auto"
    profile: str | None = None


def _resolve(
    manifest_path: str | None, bucket: str | None, region: str | None, endpoint: str | None
) -> _Target:
    manifest = load_manifest(manifest_path) if manifest_path else None
    target = manifest.target if manifest else None
    bucket = bucket or (target.bucket if target else None)
    region = region or (target.region if target else None)
    if not bucket or not region:
        raise UsageError("name the bucket and region: --bucket and --region, or --manifest")
    endpoint = (
        endpoint or os.environ.get("PICJOBS_ENDPOINT") or (target.endpoint if target else None)
    )
    if endpoint == EMBEDDED:
        raise UsageError(
            "endpoint 'embedded' starts a fresh emulator for each command, so it has no queue "
            "to manage; serve one with `picjobs emulator` and pass its URL with --endpoint"
        )
    rate = manifest.limits.rate if manifest else DEFAULT_RATE
    if target is None:
        return _Target(bucket, region, endpoint, rate)
    return _Target(bucket, region, endpoint, rate, target.credentials, target.profile)


@contextlib.asynccontextmanager
async def _client(target: _Target) -> AsyncIterator[CIClient]:
    provider = await credentials(target.credentials, target.profile)
    settings = ClientSettings(
        bucket=target.bucket,
        region=target.region,
        credentials=provider.current.credentials,
        endpoint=target.endpoint,
        concurrency=4,
    )
    limiter = AdaptiveRateLimiter(target.rate)
    async with CIClient(settings, limiter=limiter, credentials=provider) as client:
        yield client


async def _call(fn: Callable[[], Awaitable[T]], name: str) -> T:
    # Every queue call is idempotent: reading, or setting a queue to a given configuration.
    return await retry.call(
        fn, policy=retry.RetryPolicy(), budget=retry.RetryBudget(), idempotent=True, name=name
    )


async def _get_queue(client: CIClient, queue_id: str) -> Queue:
    page = await _call(lambda: client.queues_page(queue_ids=[queue_id]), "queue")
    found = next((q for q in page.queues if q.queue_id == queue_id), None)
    if found is None:
        raise UsageError(f"queue {queue_id} does not exist in bucket {client.settings.bucket}")
    return found


def _kept_notify(notify: Mapping[str, str]) -> dict[str, str] | None:
    """The queue's notification settings as `PUT /picqueue` takes them back (None: Off)."""
    kept = {name: notify[name] for name in NOTIFY_FIELDS if notify.get(name)}
    return kept or None


async def _update(
    client: CIClient, queue: Queue, *, state: str, notify: Mapping[str, str] | None
) -> Queue:
    return await _call(
        lambda: client.update_queue(queue.queue_id, name=queue.name, state=state, notify=notify),
        "queue_update",
    )


# -- output --


def _queue_json(queue: Queue) -> dict[str, Any]:
    data = dataclasses.asdict(queue)
    data["notify"] = dict(queue.notify)
    return data


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _notify_summary(notify: Mapping[str, str]) -> str:
    if notify.get("State") != "On":
        return "Off"
    if notify.get("Type") == "TDMQ":
        where = f"TDMQ {notify.get('MqRegion', '')}/{notify.get('MqName', '')}"
    else:
        where = notify.get("Url", "")
    details = ", ".join(v for v in (notify.get("Event"), notify.get("ResultFormat")) if v)
    return f"On: {where} ({details})" if details else f"On: {where}"


def _number(value: int | None) -> str:
    return "-" if value is None else str(value)


_HEADER = ("QueueId", "Name", "State", "MaxSize", "MaxConcurrent", "Notify")
_RIGHT = frozenset({"MaxSize", "MaxConcurrent"})


def _table(queues: Sequence[Queue]) -> list[str]:
    rows = [_HEADER] + [
        (
            q.queue_id,
            q.name,
            q.state,
            _number(q.max_size),
            _number(q.max_concurrent),
            _notify_summary(q.notify),
        )
        for q in queues
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if name in _RIGHT else cell.ljust(width)
            for name, cell, width in zip(_HEADER, row, widths, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def _details(queue: Queue) -> list[str]:
    fields = [
        ("QueueId", queue.queue_id),
        ("Name", queue.name),
        ("State", queue.state),
        ("MaxSize", _number(queue.max_size)),
        ("MaxConcurrent", _number(queue.max_concurrent)),
        ("Category", queue.category or "-"),
        ("CreateTime", queue.create_time or "-"),
        ("UpdateTime", queue.update_time or "-"),
        ("Notify", _notify_summary(queue.notify)),
    ]
    fields += [(f"Notify.{k}", v) for k, v in queue.notify.items() if v]
    width = max(len(label) for label, _ in fields) + 1
    return [f"{label + ':':<{width}} {value}" for label, value in fields]


# -- commands --


def _target_options(command: Callable[..., None]) -> Callable[..., None]:
    """Add the options naming the bucket (--manifest, or --bucket, --region and --endpoint) and
    --json; the command receives the bucket resolved, as `target`."""

    @functools.wraps(command)
    def with_target(
        *,
        manifest_path: str | None,
        bucket: str | None,
        region: str | None,
        endpoint: str | None,
        **options: Any,
    ) -> None:
        with errors():
            target = _resolve(manifest_path, bucket, region, endpoint)
        command(target=target, **options)

    for decorator in reversed(
        (
            click.option(
                "--manifest",
                "manifest_path",
                metavar="MANIFEST",
                type=click.Path(dir_okay=False),
                help="Take bucket, region and endpoint from this manifest's [target].",
            ),
            click.option("--bucket", help="BucketName-APPID (default: from --manifest)."),
            click.option("--region", help="e.g. ap-guangzhou (default: from --manifest)."),
            click.option(
                "--endpoint",
                help="Base URL of an emulator (default: $PICJOBS_ENDPOINT, the manifest's, "
                "or Tencent Cloud).",
            ),
            click.option("--json", "as_json", is_flag=True, help="Machine-readable output."),
        )
    ):
        with_target = decorator(with_target)
    return with_target


@click.group("queue")
def queue_group() -> None:
    """Show and change the bucket's pic queues (GET and PUT /picqueue).

    Credentials come from COS_SECRET_ID, COS_SECRET_KEY and COS_SECURITY_TOKEN.

    \b
    Exit codes: 0 done, 1 CI refused or could not be reached, 2 usage error
    (including a queue id the bucket does not have).
    """


@queue_group.command("list")
@_target_options
@click.option("--state", type=click.Choice(["Active", "Paused"]), help="Only queues in this state.")
def list_command(
    target: _Target,
    as_json: bool,
    state: str | None,
) -> None:
    """The bucket's pic queues: id, name, state, limits and notifications."""
    with errors():

        async def fetch() -> list[Queue]:
            async with _client(target) as client:
                return await _call(lambda: client.list_queues(state=state), "queue")

        queues = asyncio.run(fetch())
    if as_json:
        _echo_json(
            {
                "bucket": target.bucket,
                "region": target.region,
                "queues": [_queue_json(q) for q in queues],
            }
        )
    elif not queues:
        click.echo(
            f"bucket {target.bucket} has no pic queue" + (f" in state {state}" if state else "")
        )
    else:
        click.echo("\n".join(_table(queues)))


@queue_group.command("show")
@click.argument("queue_id")
@_target_options
def show_command(
    queue_id: str,
    target: _Target,
    as_json: bool,
) -> None:
    """Every field of one queue."""
    with errors():

        async def fetch() -> Queue:
            async with _client(target) as client:
                return await _get_queue(client, queue_id)

        queue = asyncio.run(fetch())
    if as_json:
        _echo_json(_queue_json(queue))
    else:
        click.echo("\n".join(_details(queue)))


def _set_state(
    queue_id: str,
    state: str,
    target: _Target,
    as_json: bool,
) -> None:
    async def change() -> tuple[Queue, Queue]:
        async with _client(target) as client:
            before = await _get_queue(client, queue_id)
            if before.state == state:
                return before, before
            after = await _update(client, before, state=state, notify=_kept_notify(before.notify))
            return before, after

    before, after = asyncio.run(change())
    changed = before.state != state
    if as_json:
        _echo_json({"changed": changed, "queue": _queue_json(after)})
    elif changed:
        click.echo(f"{queue_id}: {after.state} (was {before.state})")
    else:
        click.echo(f"{queue_id}: already {state}")


@queue_group.command("pause")
@click.argument("queue_id")
@_target_options
def pause_command(
    queue_id: str,
    target: _Target,
    as_json: bool,
) -> None:
    """Pause a queue: CI starts none of its jobs until it is resumed; running jobs go on.

    The queue's name and notification settings are kept.
    """
    with errors():
        _set_state(queue_id, "Paused", target, as_json)


@queue_group.command("resume")
@click.argument("queue_id")
@_target_options
def resume_command(
    queue_id: str,
    target: _Target,
    as_json: bool,
) -> None:
    """Resume a paused queue, keeping its name and notification settings."""
    with errors():
        _set_state(queue_id, "Active", target, as_json)


def _notify_config(
    current: Mapping[str, str],
    *,
    state: str,
    url: str | None,
    notify_type: str | None,
    events: Sequence[str],
    result_format: str | None,
    mq_mode: str | None,
    mq_region: str | None,
    mq_name: str | None,
) -> dict[str, str]:
    """The queue's current settings with the given options applied, checked as CI checks them."""
    config = {name: current[name] for name in NOTIFY_FIELDS if current.get(name)}
    config["State"] = state
    given = {
        "Url": url,
        "Type": notify_type,
        "Event": ",".join(dict.fromkeys(events)) or None,
        "ResultFormat": result_format,
        "MqMode": mq_mode,
        "MqRegion": mq_region,
        "MqName": mq_name,
    }
    config.update({name: value for name, value in given.items() if value})
    if state == "On":
        config.setdefault("Type", "Url")
        config.setdefault("Event", "TaskFinish")
        config.setdefault("ResultFormat", "XML")
        if config["Type"] == "Url":
            address = config.get("Url", "")
            parts = urlsplit(address)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise UsageError(
                    "notifications of Type Url need --url with an http:// or https:// address"
                    + (f", not {address!r}" if address else "")
                )
        elif not config.get("MqName"):
            raise UsageError("notifications of Type TDMQ need --mq-name (and --mq-region)")
    return {name: config[name] for name in NOTIFY_FIELDS if name in config}


@queue_group.command("notify")
@click.argument("queue_id")
@click.option("--url", help="Where CI sends job notifications (Type Url); not a private address.")
@click.option(
    "--type", "notify_type", type=click.Choice(["Url", "TDMQ"]), help="Default: as set, or Url."
)
@click.option(
    "--event",
    "events",
    multiple=True,
    type=click.Choice(EVENTS),
    help="Repeat for several (default: as set, or TaskFinish).",
)
@click.option(
    "--state",
    type=click.Choice(["On", "Off"]),
    default="On",
    show_default=True,
    help="Off keeps the other settings for later.",
)
@click.option(
    "--format",
    "result_format",
    type=click.Choice(["XML", "JSON"]),
    help="Body format (default: as set, or XML).",
)
@click.option("--mq-name", help="TDMQ queue or topic name (Type TDMQ).")
@click.option("--mq-region", type=click.Choice(MQ_REGIONS), help="TDMQ region (Type TDMQ).")
@click.option("--mq-mode", type=click.Choice(["Queue", "Topic"]), help="TDMQ mode (Type TDMQ).")
@_target_options
def notify_command(
    queue_id: str,
    url: str | None,
    notify_type: str | None,
    events: tuple[str, ...],
    state: str,
    result_format: str | None,
    mq_name: str | None,
    mq_region: str | None,
    mq_mode: str | None,
    target: _Target,
    as_json: bool,
) -> None:
    """Set where CI notifies about the queue's finished jobs (NotifyConfig).

    Settings not given keep their current values (but --state defaults to On); the
    queue's name and state are kept.
    """
    with errors():

        async def change() -> Queue:
            async with _client(target) as client:
                queue = await _get_queue(client, queue_id)
                notify = _notify_config(
                    queue.notify,
                    state=state,
                    url=url,
                    notify_type=notify_type,
                    events=events,
                    result_format=result_format,
                    mq_mode=mq_mode,
                    mq_region=mq_region,
                    mq_name=mq_name,
                )
                return await _update(client, queue, state=queue.state, notify=notify)

        queue = asyncio.run(change())
    if as_json:
        _echo_json({"changed": True, "queue": _queue_json(queue)})
    else:
        click.echo(f"{queue_id}: notifications {_notify_summary(queue.notify)}")
