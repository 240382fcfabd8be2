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
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import click

from orchestrator.cli._common import EMBEDDED, credentials, errors
from orchestrator.cloud.client import CIClient, ClientSettings
from orchestrator.cloud.models import Queue, QueueState
from orchestrator.cloud.pacing import AdaptiveRateLimiter
from orchestrator.cloud.retry import Retrier
from orchestrator.engine.queue import NotifyOptions, list_queues, set_notify, set_state, show_queue
from orchestrator.exceptions import UsageError
from orchestrator.manifest import load_manifest
from orchestrator.tencent import MQ_REGIONS, region_quota

__all__ = ["queue_group"]

EVENTS = ("TaskFinish", "WorkflowFinish")


@dataclass(frozen=True, slots=True)
class _Target:
    bucket: str
    region: str
    endpoint: str | None
    rate: float
    credentials: str = "auto"
    profile: str | None = None
    ci_endpoint: str | None = None
    cos_endpoint: str | None = None


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
            f"endpoint {EMBEDDED!r} starts a fresh emulator for each command, so it has no queue "
            "to manage; serve one with `picjobs emulator` and pass its URL with --endpoint"
        )
    # Without a manifest, the region's quota, as a manifest without [limits] rate has it.
    rate = manifest.limits.rate if manifest else region_quota(region)
    if target is None:
        return _Target(bucket, region, endpoint, rate)
    return _Target(
        bucket,
        region,
        endpoint,
        rate,
        credentials=target.credentials,
        profile=target.profile,
        ci_endpoint=target.ci_endpoint,
        cos_endpoint=target.cos_endpoint,
    )


@contextlib.asynccontextmanager
async def _client(target: _Target) -> AsyncIterator[CIClient]:
    provider = await credentials(target.credentials, target.profile)
    settings = ClientSettings(
        bucket=target.bucket,
        region=target.region,
        credentials=provider.current.credentials,
        endpoint=target.endpoint,
        concurrency=4,
        ci_endpoint=target.ci_endpoint,
        cos_endpoint=target.cos_endpoint,
    )
    limiter = AdaptiveRateLimiter(target.rate)
    async with CIClient(settings, limiter=limiter, credentials=provider) as client:
        yield client


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
@click.option(
    "--state",
    type=click.Choice([state.value for state in QueueState]),
    help="Only queues in this state.",
)
def list_command(
    target: _Target,
    as_json: bool,
    state: str | None,
) -> None:
    """The bucket's pic queues: id, name, state, limits and notifications."""
    with errors():

        async def fetch() -> list[Queue]:
            async with _client(target) as client:
                return await list_queues(client, Retrier(), state)

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
                return await show_queue(client, Retrier(), queue_id)

        queue = asyncio.run(fetch())
    if as_json:
        _echo_json(_queue_json(queue))
    else:
        click.echo("\n".join(_details(queue)))


def _set_state(
    queue_id: str,
    state: QueueState,
    target: _Target,
    as_json: bool,
) -> None:
    async def change() -> tuple[Queue, Queue]:
        async with _client(target) as client:
            return await set_state(client, Retrier(), queue_id, state)

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
        _set_state(queue_id, QueueState.PAUSED, target, as_json)


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
        _set_state(queue_id, QueueState.ACTIVE, target, as_json)


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
        options = NotifyOptions(
            state=state,
            url=url,
            notify_type=notify_type,
            events=events,
            result_format=result_format,
            mq_mode=mq_mode,
            mq_region=mq_region,
            mq_name=mq_name,
        )

        async def change() -> Queue:
            async with _client(target) as client:
                return await set_notify(client, Retrier(), queue_id, options)

        queue = asyncio.run(change())
    if as_json:
        _echo_json({"changed": True, "queue": _queue_json(queue)})
    else:
        click.echo(f"{queue_id}: notifications {_notify_summary(queue.notify)}")
