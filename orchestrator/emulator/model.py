"""The records the backend keeps: jobs, queues, templates, and CI's time format."""

from __future__ import annotations

import enum
import functools
import hashlib
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from orchestrator.emulator.imaging import ImageInfo

__all__ = [
    "CI_TIMEZONE",
    "Job",
    "JobRequest",
    "JobState",
    "Notification",
    "NotifyConfig",
    "Output",
    "PicResult",
    "Queue",
    "QueueState",
    "Template",
    "ci_time",
    "derived_id",
    "parse_ci_time",
]

CI_TIMEZONE = timezone(timedelta(hours=8))
_CI_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%z"


def ci_time(timestamp: float | None) -> str:
    """CI's time format, e.g. 2022-07-18T15:16:43+0800; `-` while not set."""
    if timestamp is None:
        return "-"
    return _ci_second(math.floor(timestamp))


@functools.lru_cache(maxsize=1024)
def _ci_second(second: int) -> str:
    # A job answer shows three of these, most of them of the same few seconds.
    return datetime.fromtimestamp(second, CI_TIMEZONE).strftime(_CI_TIME_FORMAT)


def parse_ci_time(text: str) -> float:
    """Seconds since the epoch; raises ValueError unless `text` is in CI's time format."""
    return datetime.strptime(text, _CI_TIME_FORMAT).timestamp()


def derived_id(letter: str, seed: str) -> str:
    """A CI-shaped id (one letter + 32 hex) that is the same for the same seed on every run."""
    return letter + hashlib.md5(seed.encode(), usedforsecurity=False).hexdigest()


class JobState(enum.StrEnum):
    SUBMITTED = "Submitted"
    RUNNING = "Running"
    SUCCESS = "Success"
    FAILED = "Failed"
    PAUSE = "Pause"
    CANCEL = "Cancel"

    @property
    def final(self) -> bool:
        return self in (JobState.SUCCESS, JobState.FAILED, JobState.CANCEL)


class QueueState(enum.StrEnum):
    ACTIVE = "Active"
    PAUSED = "Paused"


@dataclass(frozen=True, slots=True)
class Output:
    region: str
    bucket: str
    object: str


@dataclass(frozen=True, slots=True)
class JobRequest:
    """A submission as the client sent it; optional parts are None when absent."""

    input_object: str
    output: Output
    tag: str = "PicProcess"
    queue_id: str | None = None
    template_id: str | None = None
    is_pic_info: str | None = None
    process_rule: str | None = None
    has_pic_process: bool = False
    job_level: int = 0
    user_data: str | None = None
    callback: str | None = None
    callback_format: str | None = None
    callback_type: str | None = None
    callback_mq_config: tuple[tuple[str, str], ...] | None = None


@dataclass(frozen=True, slots=True)
class PicResult:
    """The flat PicProcessResult of ci-api.md §3."""

    object_name: str
    original_etag: str
    original: ImageInfo | None
    info: ImageInfo
    size: int


@dataclass(frozen=True, slots=True)
class Template:
    template_id: str
    name: str
    rule: str
    is_pic_info: bool = False
    create_time: float = 0.0
    update_time: float = 0.0


@dataclass(slots=True)
class Job:
    job_id: str
    seq: int
    bucket: str
    region: str
    queue_id: str
    request: JobRequest
    rule: str
    is_pic_info: bool
    template_name: str | None
    state: JobState
    creation_time: float
    start_time: float | None = None
    end_time: float | None = None
    code: str = "Success"
    message: str = ""
    result: PicResult | None = None


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    url: str = ""
    state: str = "Off"
    type: str = "Url"
    event: str = ""
    result_format: str = "XML"
    mq_mode: str = ""
    mq_region: str = ""
    mq_name: str = ""


@dataclass(slots=True)
class Queue:
    queue_id: str
    bucket: str
    name: str
    state: QueueState
    max_size: int
    max_concurrent: int
    create_time: float
    update_time: float
    notify: NotifyConfig = field(default_factory=NotifyConfig)


@dataclass(frozen=True, slots=True)
class Notification:
    """A finished job's callback to send: where, and as `JSON` or `XML`."""

    job: Job
    url: str
    result_format: str
