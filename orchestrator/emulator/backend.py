"""All emulator state, with no HTTP in it: buckets, the pic queues, templates, jobs, clock, stats.

Job progression is lazy. Nothing runs in the background: the app calls `tick()` at the start of
every request, which moves jobs forward to the emulator's current time. That is enough because
state is only observable through requests. Two progressions:

* `instant`: every queued job runs and finishes at the next tick.
* `delay`: each job runs for `job_seconds` of emulator time. The clock is real time plus an
  offset that `advance()` adds to, so tests use a large `job_seconds` and advance past it.

A queue runs at most MaxConcurrent jobs at once, taking queued jobs by JobLevel (higher first),
then by creation. A Paused queue starts nothing, and holds jobs submitted meanwhile in state
Pause until it is resumed. A job's image is processed when the job finishes.
"""

from __future__ import annotations

import bisect
import heapq
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import wraps
from pathlib import Path
from typing import Concatenate, Literal, ParamSpec, TypeVar

from orchestrator.emulator import imaging
from orchestrator.emulator.errors import (
    ApiError,
    InvalidArgument,
    NoSuchBucket,
    NoSuchKey,
    QueueSaturated,
)
from orchestrator.emulator.imagework import ImageWork
from orchestrator.emulator.model import (
    Job,
    JobRequest,
    JobState,
    Notification,
    NotifyConfig,
    PicResult,
    Queue,
    QueueState,
    Template,
    derived_id,
)
from orchestrator.emulator.stats import Stats
from orchestrator.emulator.store import (
    Bucket,
    Listing,
    ObjectMeta,
    Store,
    check_key,
    valid_bucket_name,
)

__all__ = [
    "DEFAULT_BUCKET",
    "PRESET_TEMPLATES",
    "QUEUE_MAX_SIZE",
    "Backend",
    "Clock",
    "JobQuery",
    "Progression",
    "Settings",
]

Progression = Literal["instant", "delay"]
DEFAULT_BUCKET = "examplebucket-1250000000"
# The capacity of CI's example queue; the client assumes the same when CI does not say.
QUEUE_MAX_SIZE = 10000
PRESET_TEMPLATES = (
    Template(
        derived_id("t", "template:picjobs-thumb-webp"),
        "picjobs-thumb-webp",
        "imageMogr2/thumbnail/200x/format/webp",
    ),
)
MAX_USER_DATA = 1024
MAX_QUEUE_NAME = 128

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _locked(
    method: Callable[Concatenate[Backend, _P], _R],
) -> Callable[Concatenate[Backend, _P], _R]:
    """Serialise a public method: an EmulatorThread's loop and a test thread may both call in."""

    @wraps(method)
    def wrapper(self: Backend, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


@dataclass(frozen=True, slots=True)
class Settings:
    progression: Progression = "instant"
    job_seconds: float = 1.0
    queue_max_size: int = QUEUE_MAX_SIZE
    queue_max_concurrent: int = 10
    # False: a finished job answers as if its output were written, but nothing is stored
    # (benchmarks that measure the client; see docs/emulator.md)
    write_outputs: bool = True

    def __post_init__(self) -> None:
        if self.progression not in ("instant", "delay"):
            raise ValueError("progression must be 'instant' or 'delay'")
        if self.job_seconds < 0:
            raise ValueError("job_seconds must be >= 0")
        if self.queue_max_size < 1 or self.queue_max_concurrent < 1:
            raise ValueError("queue_max_size and queue_max_concurrent must be >= 1")


@dataclass(frozen=True, slots=True)
class JobQuery:
    """Filters and paging of `GET /pic_jobs`; None means no filter."""

    queue_id: str | None = None
    states: frozenset[JobState] | None = None
    start: float | None = None
    end: float | None = None
    input_object: str | None = None
    workflow_id: str | None = None
    inventory_trigger_job_id: str | None = None
    descending: bool = True
    size: int = 10
    next_token: str = ""


class Clock:
    """Real time plus a manual offset."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self.offset += seconds


@dataclass(slots=True)
class _Runtime:
    """Dispatch state of one queue."""

    queue: Queue
    pending: dict[str, Job] = field(default_factory=dict)  # Submitted and Pause, by job id
    heap: list[tuple[int, int, str]] = field(default_factory=list)  # (-JobLevel, seq, job id)
    running: dict[str, tuple[float, Job]] = field(default_factory=dict)  # id -> (due, job)
    sim_time: float = 0.0


class Backend:
    """The emulated service. Public methods raise ApiError subclasses for API errors."""

    def __init__(
        self,
        data_dir: Path,
        *,
        default_bucket: str | None = None,
        region: str = "ap-guangzhou",
        settings: Settings | None = None,
        templates: tuple[Template, ...] = PRESET_TEMPLATES,
    ) -> None:
        self._lock = threading.RLock()
        self.region = region
        self.store = Store(Path(data_dir))
        self.default_bucket = default_bucket or self._only_bucket()
        self.store.create(self.default_bucket)
        self._initial_settings = settings or Settings()
        self._initial_templates = templates
        self.clock = Clock()
        self.image_work = ImageWork()
        self._reset_state()

    def _only_bucket(self) -> str:
        names = self.store.names()
        if len(names) > 1:
            raise ValueError(
                f"{self.store.data_dir} holds several bucket folders ({', '.join(names)}); "
                "name the default bucket"
            )
        return names[0] if names else DEFAULT_BUCKET

    def _reset_state(self) -> None:
        self.settings = self._initial_settings
        self.clock = Clock()
        self.stats = Stats()
        now = self.clock.now()
        self.templates: dict[str, Template] = {
            t.template_id: replace(t, create_time=now, update_time=now)
            for t in self._initial_templates
        }
        self._runtimes: dict[str, _Runtime] = {}  # by bucket
        self._jobs: dict[str, Job] = {}
        self._bucket_jobs: dict[str, list[Job]] = {}
        # (bucket, input object) -> its jobs in creation order, for the inputObject filter
        self._input_jobs: dict[tuple[str, str], list[Job]] = {}
        self._seq = 0
        self._outbox: list[Notification] = []
        self._open_callbacks = 0  # unfinished jobs with a callback URL of their own

    @_locked
    def reset(self) -> None:
        """Back to a fresh start: no jobs, preset templates, initial settings, buckets rescanned."""
        self.store.rescan()
        self.store.create(self.default_bucket)
        self._reset_state()

    # ------------------------------------------------------------------ settings and clock

    @_locked
    def configure(
        self,
        *,
        progression: Progression | None = None,
        job_seconds: float | None = None,
        queue_max_size: int | None = None,
        queue_max_concurrent: int | None = None,
        write_outputs: bool | None = None,
    ) -> Settings:
        self._progress()
        current = self.settings
        self.settings = Settings(
            progression=current.progression if progression is None else progression,
            job_seconds=current.job_seconds if job_seconds is None else job_seconds,
            queue_max_size=current.queue_max_size if queue_max_size is None else queue_max_size,
            queue_max_concurrent=(
                current.queue_max_concurrent
                if queue_max_concurrent is None
                else queue_max_concurrent
            ),
            write_outputs=current.write_outputs if write_outputs is None else write_outputs,
        )
        for runtime in self._runtimes.values():
            runtime.queue.max_size = self.settings.queue_max_size
            runtime.queue.max_concurrent = self.settings.queue_max_concurrent
        self._progress()
        return self.settings

    @_locked
    def advance(self, seconds: float) -> float:
        """Move the emulator clock forward and let jobs progress; returns the new time."""
        self.clock.advance(seconds)
        self._progress()
        return self.clock.now()

    @_locked
    def tick(self) -> None:
        self._progress()

    # ------------------------------------------------------------------ buckets and queues

    @_locked
    def bucket(self, name: str) -> Bucket:
        found = self.store.bucket(name)
        if found is None:
            raise NoSuchBucket()
        return found

    @_locked
    def list_objects(
        self, bucket: str, prefix: str, delimiter: str, marker: str, max_keys: int
    ) -> tuple[Bucket, Listing]:
        found = self.bucket(bucket)
        return found, found.list(prefix, delimiter, marker, max_keys)

    @_locked
    def head_object(self, bucket: str, key: str) -> ObjectMeta:
        meta = self.bucket(bucket).get(key)
        if meta is None:
            raise NoSuchKey()
        return meta

    @_locked
    def get_object(self, bucket: str, key: str) -> tuple[ObjectMeta, bytes]:
        found = self.bucket(bucket).fetch(key)
        if found is None:
            raise NoSuchKey()
        return found

    @_locked
    def put_object(self, bucket: str, key: str, data: bytes) -> ObjectMeta:
        return self.bucket(bucket).write(key, data)

    @_locked
    def job_counts(self) -> dict[str, int]:
        """How many jobs are in each state."""
        counts = dict.fromkeys((state.value for state in JobState), 0)
        for job in self._jobs.values():
            counts[job.state.value] += 1
        return counts

    def queue_id_for(self, bucket: str) -> str:
        """The id of a bucket's pic queue: the same on every run."""
        return derived_id("p", f"picqueue:{bucket}")

    def _runtime(self, bucket: str) -> _Runtime:
        runtime = self._runtimes.get(bucket)
        if runtime is None:
            self.bucket(bucket)
            now = self.clock.now()
            queue = Queue(
                queue_id=self.queue_id_for(bucket),
                bucket=bucket,
                name="queue-pic-process",
                state=QueueState.ACTIVE,
                max_size=self.settings.queue_max_size,
                max_concurrent=self.settings.queue_max_concurrent,
                create_time=now,
                update_time=now,
            )
            runtime = self._runtimes[bucket] = _Runtime(queue, sim_time=now)
        return runtime

    @_locked
    def queue(self, bucket: str) -> Queue:
        return self._runtime(bucket).queue

    @_locked
    def list_queues(
        self, bucket: str, queue_ids: list[str] | None, state: QueueState | None
    ) -> tuple[list[Queue], list[str]]:
        """The bucket's queues matching the ids (all when None) and state, and the unknown ids."""
        queue = self._runtime(bucket).queue
        missing = [qid for qid in queue_ids or () if qid != queue.queue_id]
        found = [queue] if queue_ids is None or queue.queue_id in queue_ids else []
        return [q for q in found if state is None or q.state is state], missing

    @_locked
    def update_queue(
        self, bucket: str, queue_id: str, name: str, state: QueueState, notify: NotifyConfig
    ) -> Queue:
        runtime = self._runtime(bucket)
        queue = runtime.queue
        if queue_id != queue.queue_id:
            raise InvalidArgument(f"queue {queue_id} does not exist")
        if not name or len(name) > MAX_QUEUE_NAME:
            raise InvalidArgument(f"Name must be 1 to {MAX_QUEUE_NAME} characters")
        queue.name = name
        queue.notify = notify
        queue.update_time = self.clock.now()
        if state is not queue.state:
            queue.state = state
            if state is QueueState.ACTIVE:
                self._release_paused(runtime)
        return queue

    def _release_paused(self, runtime: _Runtime) -> None:
        for job in runtime.pending.values():
            if job.state is JobState.PAUSE:
                job.state = JobState.SUBMITTED
                heapq.heappush(runtime.heap, (-job.request.job_level, job.seq, job.job_id))

    # ------------------------------------------------------------------ templates

    @_locked
    def add_template(
        self, name: str, rule: str, *, template_id: str | None = None, is_pic_info: bool = False
    ) -> Template:
        """Create or replace a PicProcess template; the rule must parse."""
        if not name:
            raise InvalidArgument("a template needs a name")
        try:
            imaging.parse_rule(rule)
        except imaging.RuleError as exc:
            raise InvalidArgument(str(exc)) from None
        template_id = template_id or derived_id("t", f"template:{name}")
        for other in self.templates.values():
            if other.name == name and other.template_id != template_id:
                raise InvalidArgument(f"a template named {name!r} already exists")
        now = self.clock.now()
        old = self.templates.get(template_id)
        created = old.create_time if old is not None else now
        template = Template(template_id, name, rule, is_pic_info, created, now)
        self.templates[template_id] = template
        return template

    @_locked
    def create_template(self, name: str, rule: str, *, is_pic_info: bool = False) -> Template:
        """`POST /template`: a new PicProcess template; a name in use is InvalidArgument."""
        if any(other.name == name for other in self.templates.values()):
            raise InvalidArgument(f"a template named {name!r} already exists")
        return self.add_template(name, rule, is_pic_info=is_pic_info)

    @_locked
    def find_templates(self, ids: list[str] | None, name_prefix: str) -> list[Template]:
        """Templates in creation order, among `ids` (all when None) whose name starts so."""
        wanted = None if ids is None else set(ids)
        return [
            template
            for template in sorted(self.templates.values(), key=lambda t: t.create_time)
            if (wanted is None or template.template_id in wanted)
            and template.name.startswith(name_prefix)
        ]

    # ------------------------------------------------------------------ jobs

    @_locked
    def submit(self, bucket: str, request: JobRequest, *, queue_required: bool = True) -> Job:
        """Accept one PicProcess job, or raise InvalidArgument or QueueSaturated.

        `queue_required` is False for `POST /jobs`, where a missing QueueId means the pic queue.
        """
        runtime = self._runtime(bucket)
        queue = runtime.queue
        if request.queue_id is None and queue_required:
            raise InvalidArgument("QueueId is required")
        if request.queue_id is not None and request.queue_id != queue.queue_id:
            raise InvalidArgument(f"queue {request.queue_id} does not exist")
        template = self._validate(request)
        if len(runtime.pending) >= queue.max_size:
            raise QueueSaturated(f"the queue already holds {queue.max_size} jobs")
        self._seq += 1
        paused = queue.state is QueueState.PAUSED
        job = Job(
            job_id="c" + uuid.uuid4().hex,
            seq=self._seq,
            bucket=bucket,
            region=self.region,
            queue_id=queue.queue_id,
            request=request,
            rule=template.rule if template else request.process_rule or "",
            is_pic_info=template.is_pic_info if template else request.is_pic_info == "true",
            template_name=template.name if template else None,
            state=JobState.PAUSE if paused else JobState.SUBMITTED,
            creation_time=self.clock.now(),
        )
        self._jobs[job.job_id] = job
        self._bucket_jobs.setdefault(bucket, []).append(job)
        self._input_jobs.setdefault((bucket, request.input_object), []).append(job)
        runtime.pending[job.job_id] = job
        self._open_callbacks += _own_callback(request)
        if not paused:
            heapq.heappush(runtime.heap, (-request.job_level, job.seq, job.job_id))
        out = request.output
        self.stats.job_created((bucket, request.input_object, out.bucket, out.object))
        return job

    def _validate(self, request: JobRequest) -> Template | None:
        if request.tag != "PicProcess":
            raise InvalidArgument(f"Tag must be PicProcess, not {request.tag!r}")
        for what, key in (
            ("Input/Object", request.input_object),
            ("Output/Object", request.output.object),
        ):
            try:
                check_key(key)
            except ApiError as exc:
                raise InvalidArgument(f"{what}: {exc.message}") from None
        if not request.output.region:
            raise InvalidArgument("Output/Region is required")
        if not valid_bucket_name(request.output.bucket):
            raise InvalidArgument(f"Output/Bucket is not a bucket name: {request.output.bucket!r}")
        if not 0 <= request.job_level <= 2:
            raise InvalidArgument("JobLevel must be 0, 1 or 2")
        if request.user_data is not None and (
            len(request.user_data) > MAX_USER_DATA
            or not all(" " <= ch <= "~" for ch in request.user_data)
        ):
            raise InvalidArgument(
                f"UserData must be printable ASCII of at most {MAX_USER_DATA} bytes"
            )
        if request.is_pic_info not in (None, "true", "false"):
            raise InvalidArgument("IsPicInfo must be true or false")
        if request.callback_format not in (None, "JSON", "XML"):
            raise InvalidArgument("CallBackFormat must be JSON or XML")
        if request.callback_type not in (None, "Url", "TDMQ"):
            raise InvalidArgument("CallBackType must be Url or TDMQ")
        if request.callback_type == "TDMQ" and not dict(request.callback_mq_config or ()).get(
            "MqName"
        ):
            raise InvalidArgument("CallBackMqConfig/MqName is required when CallBackType is TDMQ")
        if request.template_id is not None:
            template = self.templates.get(request.template_id)
            if template is None:
                raise InvalidArgument(f"template {request.template_id} does not exist")
            return template
        if not request.process_rule:
            raise InvalidArgument("either Operation/TemplateId or Operation/PicProcess/ProcessRule")
        return None

    @_locked
    def describe(self, bucket: str, job_ids: list[str]) -> tuple[list[Job], list[str]]:
        """The known jobs among `job_ids` (in request order, once each) and the unknown ids."""
        found: list[Job] = []
        missing: list[str] = []
        for job_id in dict.fromkeys(job_ids):
            job = self._jobs.get(job_id)
            if job is not None and job.bucket == bucket:
                found.append(job)
            else:
                missing.append(job_id)
        return found, missing

    @_locked
    def list_jobs(self, bucket: str, query: JobQuery) -> tuple[list[Job], str]:
        """One page of the bucket's jobs and the token of the next page ('' on the last)."""
        if query.workflow_id or query.inventory_trigger_job_id:
            return [], ""  # the emulator has no workflows or batch jobs
        if query.input_object is None:
            jobs = self._bucket_jobs.get(bucket, [])
        else:
            jobs = self._input_jobs.get((bucket, query.input_object), [])
        if query.next_token:
            if not query.next_token.isdigit():
                raise InvalidArgument("nextToken is not valid")
            after = int(query.next_token)
            if query.descending:
                candidates = jobs[: bisect.bisect_left(jobs, after, key=lambda j: j.seq)]
            else:
                candidates = jobs[bisect.bisect_right(jobs, after, key=lambda j: j.seq) :]
        else:
            candidates = jobs
        ordered = reversed(candidates) if query.descending else iter(candidates)
        page: list[Job] = []
        for job in ordered:
            if self._matches(job, query):
                if len(page) == query.size:
                    return page, str(page[-1].seq)
                page.append(job)
        return page, ""

    @staticmethod
    def _matches(job: Job, query: JobQuery) -> bool:
        created = int(job.creation_time)
        return (
            (query.queue_id is None or job.queue_id == query.queue_id)
            and (query.states is None or job.state in query.states)
            and (query.start is None or created >= query.start)
            and (query.end is None or created <= query.end)
            and (query.input_object is None or job.request.input_object == query.input_object)
        )

    @_locked
    def cancel(self, bucket: str, job_id: str) -> Job:
        """Cancel a job that has not started; anything else is InvalidArgument."""
        job = self._jobs.get(job_id)
        if job is None or job.bucket != bucket:
            raise InvalidArgument(f"job {job_id} does not exist")
        if job.state not in (JobState.SUBMITTED, JobState.PAUSE):
            raise InvalidArgument(
                f"job {job_id} is {job.state.value}; only unstarted jobs can be cancelled"
            )
        self._runtimes[bucket].pending.pop(job_id, None)
        job.state = JobState.CANCEL
        job.end_time = self.clock.now()
        self._open_callbacks -= _own_callback(job.request)
        return job

    # ------------------------------------------------------------------ callbacks

    @_locked
    def notifications_due(self) -> bool:
        """Whether an unfinished job would send a callback on finishing: then something must
        move jobs forward even while no request comes in."""
        return self._open_callbacks > 0 or any(
            runtime.queue.notify.state == "On" and (runtime.pending or runtime.running)
            for runtime in self._runtimes.values()
        )

    @_locked
    def take_notifications(self) -> list[Notification]:
        """The callbacks of jobs finished since the last call."""
        outbox, self._outbox = self._outbox, []
        return outbox

    def _notify(self, job: Job) -> None:
        """Queue the callback of a job that just finished (ci-api.md §8): to its own CallBack
        URL, else to its queue's NotifyConfig URL when that is On for TaskFinish, unless the job
        said CallBack = no; as CallBackFormat, else the queue's ResultFormat."""
        request = job.request
        self._open_callbacks -= _own_callback(request)
        if request.callback_type == "TDMQ" or request.callback == "no":
            return
        notify = self._runtimes[job.bucket].queue.notify
        result_format = request.callback_format or notify.result_format or "XML"
        if request.callback:
            self._outbox.append(Notification(job, request.callback, result_format))
            return
        events = {event.strip() for event in notify.event.split(",")}
        if notify.state == "On" and notify.type == "Url" and notify.url and "TaskFinish" in events:
            self._outbox.append(Notification(job, notify.url, result_format))

    # ------------------------------------------------------------------ progression

    def _progress(self) -> None:
        now = self.clock.now()
        for runtime in self._runtimes.values():
            if self.settings.progression == "instant":
                self._progress_instant(runtime, now)
            else:
                self._progress_delay(runtime, now)
            runtime.sim_time = now

    def _progress_instant(self, runtime: _Runtime, now: float) -> None:
        while True:
            self._start_ready(runtime, now)
            if not runtime.running:
                return
            finishing = sorted(runtime.running.values(), key=lambda entry: entry[1].seq)
            runtime.running.clear()
            for _, job in finishing:
                self._finish(job, now)

    def _progress_delay(self, runtime: _Runtime, now: float) -> None:
        moment = runtime.sim_time
        while True:
            self._start_ready(runtime, moment)
            if not runtime.running:
                return
            due, job = min(runtime.running.values(), key=lambda entry: (entry[0], entry[1].seq))
            if due > now:
                return
            moment = due
            del runtime.running[job.job_id]
            self._finish(job, due)

    def _start_ready(self, runtime: _Runtime, moment: float) -> None:
        queue = runtime.queue
        while (
            queue.state is QueueState.ACTIVE
            and len(runtime.running) < queue.max_concurrent
            and runtime.heap
        ):
            _, _, job_id = heapq.heappop(runtime.heap)
            job = runtime.pending.pop(job_id, None)
            if job is None or job.state is not JobState.SUBMITTED:
                continue
            start = max(moment, job.creation_time)
            job.state = JobState.RUNNING
            job.start_time = start
            runtime.running[job_id] = (start + self.settings.job_seconds, job)

    def _finish(self, job: Job, at: float) -> None:
        job.end_time = at
        try:
            job.result = self._process(job)
        except _JobFailure as failure:
            job.state = JobState.FAILED
            job.code, job.message = failure.code, failure.message
        except Exception as exc:  # an emulator bug must fail the job, not the request
            job.state = JobState.FAILED
            job.code, job.message = "InternalError", f"{type(exc).__name__}: {exc}"
        else:
            job.state = JobState.SUCCESS
        self._notify(job)

    def _process(self, job: Job) -> PicResult:
        request = job.request
        source = self.store.bucket(job.bucket)
        found = source.fetch(request.input_object) if source is not None else None
        if found is None:
            raise _JobFailure(
                "ResourceNotFound", f"the input object does not exist: {request.input_object}"
            )
        meta, data = found
        try:
            processed = self.image_work.process(data, job.rule)
            original = self.image_work.info(data) if job.is_pic_info else None
        except imaging.RuleError as exc:
            raise _JobFailure("InvalidArgument", str(exc)) from None
        except imaging.ImageDecodeError as exc:
            raise _JobFailure(
                "ResourceNotSupported", str(exc) or "the input is not a supported image"
            ) from None
        if self.settings.write_outputs:
            target = self.store.create(request.output.bucket)
            target.write(request.output.object, processed.data)
        return PicResult(
            object_name=request.output.object,
            original_etag=meta.etag,
            original=original,
            info=processed.info,
            size=processed.size,
        )


def _own_callback(request: JobRequest) -> bool:
    return bool(request.callback) and request.callback != "no" and request.callback_type != "TDMQ"


class _JobFailure(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
