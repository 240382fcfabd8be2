"""What a manifest says, as frozen dataclasses: the target, the source, the job and the limits."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Final, Literal

from orchestrator import defaults
from orchestrator.manifest.notify import NotifyConfig
from orchestrator.shard import Shard

__all__ = [
    "DEFAULT_JOB",
    "EMBEDDED_ENDPOINT",
    "JobConfig",
    "LedgerJournal",
    "Limits",
    "Manifest",
    "PriorityRule",
    "SkipExisting",
    "SourceConfig",
    "SourceKind",
    "Target",
]

SourceKind = Literal["prefix", "csv", "inventory"]
# SQLite's journal for the ledger: "auto" is WAL, or a rollback journal on a network mount.
LedgerJournal = Literal["auto", "wal", "delete"]
# `[job] skip_existing`: no job for an object whose output exists ("newer": and is not older).
SkipExisting = Literal["exists", "newer"]
# `[target] endpoint = "embedded"` runs the emulator in-process (the demo does).
EMBEDDED_ENDPOINT: Final = "embedded"
# The name of a single unnamed `[job]`. Its items keep a NULL `job` in the ledger (as every row
# written before several jobs existed), and the ledger reads a NULL job as this name.
DEFAULT_JOB: Final = "default"


@dataclass(frozen=True, slots=True)
class Target:
    """_Where the inputs live and where CI and COS calls go."""

    bucket: str
    region: str
    queue_id: str | None = None
    endpoint: str | None = None
    # A source from orchestrator.tencent.CREDENTIAL_CHOICES; `profile` names a profile file entry.
    credentials: str = "auto"
    profile: str | None = None
    # Full base URLs for private, internal or accelerated domains; their host is the Host header.
    ci_endpoint: str | None = None
    cos_endpoint: str | None = None


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """Which objects to process: one kind of source, narrowed by key globs, sizes and dates."""

    kind: SourceKind
    prefix: str | None = None
    csv_path: Path | None = None
    inventory_key: str | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    min_size: int | None = None
    max_size: int | None = None
    modified_after: datetime | None = None
    modified_before: datetime | None = None


@dataclass(frozen=True, slots=True)
class PriorityRule:
    """Items whose key matches the glob get this JobLevel."""

    match: str
    job_level: int


@dataclass(frozen=True, slots=True)
class JobConfig:
    """The PicProcess operation and where its results go."""

    template_id: str | None
    process_rule: str | None
    is_pic_info: bool
    output: str
    output_bucket: str
    output_region: str
    job_level: int = 0
    user_data: str | None = None
    callback: str | None = None
    callback_format: str | None = None
    callback_type: str | None = None
    priority: tuple[PriorityRule, ...] = ()
    reprocess_changed: bool = False
    # [job.callback_mq] for callback_type TDMQ: (region, mode, name)
    callback_mq: tuple[str, str, str] | None = None
    name: str = DEFAULT_JOB
    # False for a single unnamed `[job]`: its rows keep a NULL `job` column.
    named: bool = False
    skip_existing: SkipExisting | None = None  # None: `false`, every object gets its job

    @property
    def label(self) -> str | None:
        """What the ledger's `job` column holds for this job's items."""
        return self.name if self.named else None

    @property
    def operation_fingerprint(self) -> str:
        """A short digest of what is done to each object: a new operation makes new items."""
        operation = ["PicProcess", self.template_id, self.process_rule, self.is_pic_info]
        encoded = json.dumps(operation, separators=(",", ":")).encode()
        return hashlib.sha256(encoded).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Limits:
    """Pacing, retries and the failure breaker. A manifest without `rate` gets its region's
    quota (orchestrator.tencent.region_quota); defaults.RATE is the mainland regions' one."""

    rate: float = defaults.RATE
    concurrency: int = defaults.CONCURRENCY
    max_attempts: int = defaults.MAX_ATTEMPTS
    min_finished: int = 100
    max_failure_percent: float = 50.0
    max_consecutive_same_error: int = 20
    ledger_journal: LedgerJournal = "auto"


@dataclass(frozen=True, slots=True)
class Manifest:
    """One validated manifest file."""

    name: str
    path: Path
    ledger_path: Path
    target: Target
    source: SourceConfig
    # One or more; each object of the source becomes one item per job.
    jobs: tuple[JobConfig, ...]
    limits: Limits = field(default_factory=Limits)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    # SQLite `synchronous`: NORMAL survives a killed process; FULL also survives power loss.
    ledger_sync: Literal["NORMAL", "FULL"] = "NORMAL"
    # Set by `run --shard K/N` (see orchestrator.shard): only this shard's objects are planned.
    shard: Shard | None = None

    @property
    def job(self) -> JobConfig:
        """The manifest's only job; code that handles several reads `jobs`."""
        if len(self.jobs) != 1:
            raise ValueError(f"{self.path} has {len(self.jobs)} jobs: read Manifest.jobs")
        return self.jobs[0]

    @property
    def job_names(self) -> tuple[str, ...]:
        return tuple(job.name for job in self.jobs)

    @property
    def output_buckets(self) -> tuple[str, ...]:
        """Every job's output bucket, each once, in job order."""
        return tuple(dict.fromkeys(job.output_bucket for job in self.jobs))
