"""Typed records of what CI and COS send and receive."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DescribeResult",
    "JobDetail",
    "JobPage",
    "JobRequest",
    "JobState",
    "ObjectEntry",
    "ObjectPage",
    "PicResult",
    "Queue",
    "QueuePage",
    "QueueState",
]


class JobState(enum.StrEnum):
    """CI's words for a job's state (ci-api.md); the tracker translates them into ledger states."""

    SUBMITTED = "Submitted"
    RUNNING = "Running"
    PAUSE = "Pause"
    SUCCESS = "Success"
    FAILED = "Failed"
    CANCEL = "Cancel"


class QueueState(enum.StrEnum):
    ACTIVE = "Active"
    PAUSED = "Paused"


FINAL_CI_STATES = frozenset({JobState.SUCCESS, JobState.FAILED, JobState.CANCEL})


@dataclass(frozen=True, slots=True)
class JobRequest:
    """The body of `POST /pic_jobs`."""

    input_object: str
    output_bucket: str
    output_region: str
    output_object: str
    queue_id: str | None = None
    template_id: str | None = None
    process_rule: str | None = None
    is_pic_info: bool = False
    user_data: str | None = None
    job_level: int | None = None
    callback: str | None = None
    callback_format: str | None = None
    callback_type: str | None = None
    # CallBackMqConfig for callback_type TDMQ: (MqRegion, MqMode, MqName)
    callback_mq: tuple[str, str, str] | None = None


@dataclass(frozen=True, slots=True)
class PicResult:
    """Output image info, from either PicProcessResult shape CI is documented to send."""

    object_name: str | None = None
    format: str | None = None
    width: int | None = None
    height: int | None = None
    size: int | None = None
    quality: int | None = None
    etag: str | None = None
    original: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__ if getattr(self, k) is not None}


@dataclass(frozen=True, slots=True)
class JobDetail:
    job_id: str
    state: str
    code: str = ""
    message: str = ""
    queue_id: str = ""
    input_bucket: str = ""
    input_object: str = ""
    output_bucket: str = ""
    output_region: str = ""
    output_object: str = ""
    creation_time: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    job_level: int | None = None
    user_data: str | None = None
    result: PicResult | None = None

    @property
    def final(self) -> bool:
        return self.state in FINAL_CI_STATES


@dataclass(frozen=True, slots=True)
class DescribeResult:
    jobs: list[JobDetail]
    missing: list[str]


@dataclass(frozen=True, slots=True)
class JobPage:
    jobs: list[JobDetail]
    next_token: str | None


@dataclass(frozen=True, slots=True)
class Queue:
    queue_id: str
    name: str
    state: str
    max_size: int | None = None
    max_concurrent: int | None = None
    category: str | None = None
    create_time: str | None = None
    update_time: str | None = None
    notify: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class QueuePage:
    queues: list[Queue]
    total_count: int | None
    missing: list[str]


@dataclass(frozen=True, slots=True)
class ObjectEntry:
    key: str
    size: int | None
    etag: str | None
    last_modified: str | None
    storage_class: str | None = None


@dataclass(frozen=True, slots=True)
class ObjectPage:
    entries: list[ObjectEntry]
    common_prefixes: list[str]
    is_truncated: bool
    next_marker: str | None
