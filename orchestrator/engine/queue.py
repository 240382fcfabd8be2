"""A bucket's pic queues: find the one a run uses, pause or resume one, set its notifications.

One path for `picjobs run` and `picjobs queue`: a queue is changed with `PUT /picqueue/<id>`,
which takes the whole configuration, so its name and the notification settings CI accepts back
are always sent with the change.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from orchestrator.cloud.client import CIClient
from orchestrator.cloud.models import Queue, QueueState
from orchestrator.cloud.retry import Retrier
from orchestrator.exceptions import UsageError

__all__ = [
    "NOTIFY_FIELDS",
    "NotifyOptions",
    "get_queue",
    "kept_notify",
    "list_queues",
    "notify_config",
    "resolve_queue",
    "set_notify",
    "set_state",
    "show_queue",
]

log = logging.getLogger(__name__)

# The NotifyConfig fields `PUT /picqueue/<id>` accepts, in the order CI documents them.
NOTIFY_FIELDS = ("Url", "Event", "Type", "State", "ResultFormat", "MqMode", "MqRegion", "MqName")


@dataclass(frozen=True)
class NotifyOptions:
    """What `picjobs queue notify` was asked to set; None (or empty) keeps the current value."""

    state: str = "On"
    url: str | None = None
    notify_type: str | None = None
    events: Sequence[str] = ()
    result_format: str | None = None
    mq_mode: str | None = None
    mq_region: str | None = None
    mq_name: str | None = None


def kept_notify(notify: Mapping[str, str]) -> dict[str, str] | None:
    """The queue's notification settings as `PUT /picqueue` takes them back (None: Off)."""
    kept = {name: notify[name] for name in NOTIFY_FIELDS if notify.get(name)}
    return kept or None


# Every queue call is idempotent: reading, or setting a queue to a given configuration.


async def list_queues(client: CIClient, retrier: Retrier, state: str | None = None) -> list[Queue]:
    return await retrier.call(
        lambda: client.list_queues(state=state), idempotent=True, name="queue"
    )


async def get_queue(client: CIClient, retrier: Retrier, queue_id: str) -> Queue | None:
    page = await retrier.call(
        lambda: client.queues_page(queue_ids=[queue_id]), idempotent=True, name="queue"
    )
    return next((q for q in page.queues if q.queue_id == queue_id), None)


async def _existing(client: CIClient, retrier: Retrier, queue_id: str) -> Queue:
    found = await get_queue(client, retrier, queue_id)
    if found is None:
        raise UsageError(f"queue {queue_id} does not exist in bucket {client.settings.bucket}")
    return found


async def _update(
    client: CIClient,
    retrier: Retrier,
    queue: Queue,
    *,
    state: str,
    notify: Mapping[str, str] | None,
) -> Queue:
    return await retrier.call(
        lambda: client.update_queue(queue.queue_id, name=queue.name, state=state, notify=notify),
        idempotent=True,
        name="queue_update",
    )


async def show_queue(client: CIClient, retrier: Retrier, queue_id: str) -> Queue:
    return await _existing(client, retrier, queue_id)


async def set_state(
    client: CIClient, retrier: Retrier, queue_id: str, state: QueueState
) -> tuple[Queue, Queue]:
    """Pause or resume a queue, keeping its name and notifications: (before, after)."""
    before = await _existing(client, retrier, queue_id)
    if before.state == state:
        return before, before
    return before, await _change_state(client, retrier, before, state)


async def _change_state(client: CIClient, retrier: Retrier, queue: Queue, state: str) -> Queue:
    return await _update(client, retrier, queue, state=state, notify=kept_notify(queue.notify))


async def set_notify(
    client: CIClient, retrier: Retrier, queue_id: str, options: NotifyOptions
) -> Queue:
    """Apply `options` to the queue's notification settings, keeping its name and state."""
    queue = await _existing(client, retrier, queue_id)
    notify = notify_config(queue.notify, options)
    return await _update(client, retrier, queue, state=queue.state, notify=notify)


def notify_config(current: Mapping[str, str], options: NotifyOptions) -> dict[str, str]:
    """The queue's current settings with the given options applied, checked as CI checks them."""
    config = kept_notify(current) or {}
    config["State"] = options.state
    given = {
        "Url": options.url,
        "Type": options.notify_type,
        "Event": ",".join(dict.fromkeys(options.events)) or None,
        "ResultFormat": options.result_format,
        "MqMode": options.mq_mode,
        "MqRegion": options.mq_region,
        "MqName": options.mq_name,
    }
    config.update({name: value for name, value in given.items() if value})
    if options.state == "On":
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


async def resolve_queue(
    client: CIClient,
    retrier: Retrier,
    *,
    queue_id: str | None,
    resume: bool,
    where: str,
) -> Queue:
    """The queue a run submits to: `queue_id`, or the bucket's first Active pic queue (its first
    queue when none is Active). A Paused one is resumed only with `resume`. `where` names the
    setting `queue_id` came from, for the error when it does not exist."""
    if queue_id:
        queue = await get_queue(client, retrier, queue_id)
        if queue is None:
            raise UsageError(f"{where}: [target] queue_id {queue_id!r} does not exist")
    else:
        queues = await retrier.call(client.list_queues, idempotent=True, name="list queues")
        if not queues:
            raise UsageError(f"bucket {client.settings.bucket!r} has no pic queue")
        queue = next((q for q in queues if q.state == QueueState.ACTIVE), queues[0])
    if queue.state == QueueState.PAUSED:
        if not resume:
            raise UsageError(
                f"queue {queue.queue_id} is Paused; resume it in the console or run again "
                "with --resume-queue"
            )
        queue = await _change_state(client, retrier, queue, QueueState.ACTIVE)
        log.info("resumed queue %s", queue.queue_id)
    return queue
