"""Checking a parsed manifest against the schema: typed values, required and unknown keys (with
the closest valid key as a hint), and one-line errors at the line that holds the problem."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from orchestrator.manifest.jobs import JOB_NAME, output_clash
from orchestrator.manifest.model import (
    DEFAULT_JOB,
    EMBEDDED_ENDPOINT,
    JobConfig,
    LedgerJournal,
    Limits,
    Manifest,
    PriorityRule,
    SkipExisting,
    SourceConfig,
    SourceKind,
    Target,
)
from orchestrator.manifest.notify import (
    DEFAULT_EVENTS,
    NotifyConfig,
    NotifyEvent,
    heartbeat_problem,
    notify_url_problem,
)
from orchestrator.manifest.reading import Where, read_toml
from orchestrator.manifest.tables import TableReader
from orchestrator.manifest.values import (
    DATE_EXPECTED,
    as_strings,
    as_utc,
    got,
    is_http_url,
    output_template_problem,
    short,
    user_data_problem,
)
from orchestrator.tencent import CREDENTIAL_CHOICES, MQ_MODES, MQ_REGIONS, region_quota

__all__ = ["Validator", "load_manifest"]


def load_manifest(path: str | Path) -> Manifest:
    """Read, parse and validate a manifest; every problem is a one-line ManifestError."""
    shown = str(path)
    text, data = read_toml(Path(path), shown)
    return Validator(shown, Path(path).resolve(), text, data).manifest()


_NAME = re.compile(r"^[A-Za-z0-9._-]+$")

_ROOT_KEYS = ("name", "ledger", "ledger_sync")
_ROOT_TABLES = ("target", "source", "job", "limits", "notify")
_NOTIFY_KEYS = ("urls", "on", "heartbeat")
_TARGET_KEYS = (
    "bucket",
    "region",
    "queue_id",
    "endpoint",
    "credentials",
    "profile",
    "ci_endpoint",
    "cos_endpoint",
)
_SOURCE_KINDS: tuple[SourceKind, ...] = ("prefix", "csv", "inventory")
_FILTER_KEYS = ("min_size", "max_size", "modified_after", "modified_before")
_SOURCE_KEYS = (*_SOURCE_KINDS, "include", "exclude", *_FILTER_KEYS)
_JOB_KEYS = (
    "name",
    "template_id",
    "process_rule",
    "is_pic_info",
    "output",
    "output_bucket",
    "output_region",
    "job_level",
    "user_data",
    "callback",
    "callback_format",
    "callback_type",
    "reprocess_changed",
    "skip_existing",
    "priority",
    "callback_mq",
)
_MQ_KEYS = ("region", "mode", "name")
_RULE_KEYS = ("match", "job_level")
_LIMIT_KEYS = (
    "rate",
    "concurrency",
    "max_attempts",
    "min_finished",
    "max_failure_percent",
    "max_consecutive_same_error",
    "ledger_journal",
)


class Validator(TableReader):
    """Builds a Manifest from parsed TOML, raising at the first problem it finds."""

    root_tables = _ROOT_TABLES

    # Tables

    def manifest(self) -> Manifest:
        data = self.data
        self.check_keys((), data, (*_ROOT_KEYS, *_ROOT_TABLES))
        name = self.required_text((), data, "name")
        if not _NAME.match(name) or set(name) == {"."}:
            raise self.key_error(
                (), "name", f"must use only letters, digits, '.', '_' and '-', got {short(name)}"
            )
        base = self.path.parent
        ledger = self.text((), data, "ledger")
        target = self.target()
        sync = self.text((), data, "ledger_sync") or "normal"
        if sync.lower() not in ("normal", "full"):
            raise self.key_error(
                (), "ledger_sync", f"must be 'normal' or 'full', got {short(sync)}"
            )
        return Manifest(
            name=name,
            path=self.path,
            ledger_path=base / ledger if ledger else base / ".picjobs" / f"{name}.sqlite",
            target=target,
            source=self.source(),
            jobs=self.jobs(target),
            limits=self.limits(target.region),
            notify=self.notify(),
            ledger_sync="FULL" if sync.lower() == "full" else "NORMAL",
        )

    def target(self) -> Target:
        where: Where = ("target",)
        values = self.table(self.data, "target", _TARGET_KEYS)
        bucket = self.required_text(where, values, "bucket")
        region = self.required_text(where, values, "region")
        endpoint = self.text(where, values, "endpoint")
        if endpoint is not None and endpoint != EMBEDDED_ENDPOINT and not is_http_url(endpoint):
            raise self.key_error(
                where,
                "endpoint",
                f"must be an http(s) URL or {EMBEDDED_ENDPOINT!r}, got {short(endpoint)}",
            )
        choice = self.text(where, values, "credentials") or "auto"
        if choice not in CREDENTIAL_CHOICES:
            raise self.key_error(
                where,
                "credentials",
                f"must be one of {', '.join(CREDENTIAL_CHOICES)}, got {short(choice)}",
            )
        urls: dict[str, str | None] = {}
        for key in ("ci_endpoint", "cos_endpoint"):
            url = urls[key] = self.text(where, values, key)
            if url is not None and not is_http_url(url):
                raise self.key_error(where, key, f"must be an http(s) URL, got {short(url)}")
        return Target(
            bucket,
            region,
            self.text(where, values, "queue_id"),
            endpoint,
            credentials=choice,
            profile=self.text(where, values, "profile"),
            ci_endpoint=urls["ci_endpoint"],
            cos_endpoint=urls["cos_endpoint"],
        )

    def source(self) -> SourceConfig:
        where: Where = ("source",)
        values = self.table(self.data, "source", _SOURCE_KEYS)
        kind = self.one_of(where, values, _SOURCE_KINDS)
        # An empty prefix is the whole bucket.
        location = self.required_text(where, values, kind, allow_empty=kind == "prefix")
        include = self.globs(where, values, "include")
        exclude = self.globs(where, values, "exclude")
        min_size = self.integer(where, values, "min_size", 0)
        max_size = self.integer(where, values, "max_size", 0)
        after = self.get(where, values, "modified_after", as_utc, DATE_EXPECTED)
        before = self.get(where, values, "modified_before", as_utc, DATE_EXPECTED)
        if kind == "csv":
            for key in _FILTER_KEYS:
                if key in values:
                    raise self.key_error(
                        where,
                        key,
                        "size and date filters need a prefix or inventory source"
                        " (CSV rows carry no size or date)",
                    )
        if min_size is not None and max_size is not None and min_size > max_size:
            raise self.key_error(
                where, "max_size", f"must be at least min_size ({min_size}), got {max_size}"
            )
        if after is not None and before is not None and after > before:
            raise self.key_error(where, "modified_before", "must not be before modified_after")
        return SourceConfig(
            kind=cast(SourceKind, kind),
            prefix=location if kind == "prefix" else None,
            csv_path=self.path.parent / location if kind == "csv" else None,
            inventory_key=location if kind == "inventory" else None,
            include=include,
            exclude=exclude,
            min_size=min_size,
            max_size=max_size,
            modified_after=after,
            modified_before=before,
        )

    def globs(self, table: Where, values: Mapping[str, Any], key: str) -> tuple[str, ...]:
        found = self.get(table, values, key, as_strings, "an array of strings") or ()
        if "" in found:
            raise self.key_error(table, key, "must not contain an empty pattern")
        return found

    def jobs(self, target: Target) -> tuple[JobConfig, ...]:
        """A `[job]` table, or `[[job]]` tables: several outputs per object, each named."""
        if "job" not in self.data:
            raise self.error((), "missing required table [job]")
        found = self.data["job"]
        if isinstance(found, dict):
            self.check_keys(("job",), found, _JOB_KEYS)
            return (self.job(target, ("job",), found),)
        if not isinstance(found, list) or not found or not all(isinstance(t, dict) for t in found):
            raise self.error(
                ("job",), f"job: must be a table [job] or tables [[job]], got {got(found)}"
            )
        jobs: list[JobConfig] = []
        for index, values in enumerate(found):
            where: Where = ("job", index)
            self.check_keys(where, values, _JOB_KEYS)
            if len(found) > 1:
                self.required(where, values, "name")
            job = self.job(target, where, values)
            twin = next((other for other in jobs if other.name == job.name), None)
            if twin is not None:
                raise self.key_error(where, "name", f"{job.name!r} names another job too")
            for other in jobs:
                clash = output_clash(other, job)
                if clash is not None:
                    raise self.key_error(where, "output", clash)
            jobs.append(job)
        return tuple(jobs)

    def job(self, target: Target, where: Where, values: Mapping[str, Any]) -> JobConfig:
        name = self.text(where, values, "name")
        if name is not None and not JOB_NAME.match(name):
            raise self.key_error(
                where, "name", f"must use only letters, digits, '-' and '_', got {short(name)}"
            )
        operation = self.one_of(where, values, ("template_id", "process_rule"))
        operation_value = self.required_text(where, values, operation)
        output = self.required_text(where, values, "output")
        problem = output_template_problem(output)
        if problem is not None:
            raise self.key_error(where, "output", problem)
        output_bucket = self.text(where, values, "output_bucket") or target.bucket
        output_region = self.text(where, values, "output_region") or target.region
        job_level = self.level(where, values, "job_level") or 0
        user_data = self.text(where, values, "user_data")
        problem = None if user_data is None else user_data_problem(user_data)
        if problem is not None:
            raise self.key_error(where, "user_data", problem)
        callback = self.text(where, values, "callback")
        if callback is not None and callback != "no" and not is_http_url(callback):
            raise self.key_error(
                where, "callback", f"must be an http(s) URL or 'no', got {short(callback)}"
            )
        callback_format = self.text(where, values, "callback_format")
        if callback_format not in (None, "JSON", "XML"):
            raise self.key_error(
                where, "callback_format", f"must be 'JSON' or 'XML', got {short(callback_format)}"
            )
        callback_type = self.text(where, values, "callback_type")
        if callback_type not in (None, "Url", "TDMQ"):
            raise self.key_error(
                where, "callback_type", f"must be 'Url' or 'TDMQ', got {short(callback_type)}"
            )
        callback_mq = self.callback_mq(values, callback_type)
        return JobConfig(
            template_id=operation_value if operation == "template_id" else None,
            process_rule=operation_value if operation == "process_rule" else None,
            is_pic_info=self.flag(where, values, "is_pic_info"),
            output=output,
            output_bucket=output_bucket,
            output_region=output_region,
            job_level=job_level,
            user_data=user_data,
            callback=callback,
            callback_format=callback_format,
            callback_type=callback_type,
            priority=self.priority(where, values),
            reprocess_changed=self.flag(where, values, "reprocess_changed"),
            callback_mq=callback_mq,
            name=DEFAULT_JOB if name is None else name,
            named=name is not None,
            skip_existing=self.skip_existing(where, values),
        )

    def callback_mq(
        self, job: Mapping[str, Any], callback_type: str | None
    ) -> tuple[str, str, str] | None:
        where: Where = ("job", "callback_mq")
        if "callback_mq" not in job:
            if callback_type == "TDMQ":
                raise self.error(
                    ("job", "callback_type"),
                    "[job] callback_type 'TDMQ' needs a [job.callback_mq] table",
                )
            return None
        values = job["callback_mq"]
        if not isinstance(values, dict):
            raise self.key_error(("job",), "callback_mq", f"must be a table, got {got(values)}")
        if callback_type != "TDMQ":
            raise self.error(where, "[job.callback_mq] needs callback_type = 'TDMQ' in [job]")
        self.check_keys(where, values, _MQ_KEYS)
        region = self.required_text(where, values, "region")
        if region not in MQ_REGIONS:
            raise self.key_error(
                where, "region", f"must be one of {', '.join(MQ_REGIONS)}, got {short(region)}"
            )
        mode = self.text(where, values, "mode") or "Queue"
        if mode not in MQ_MODES:
            raise self.key_error(where, "mode", f"must be 'Queue' or 'Topic', got {short(mode)}")
        return region, mode, self.required_text(where, values, "name")

    def skip_existing(self, table: Where, values: Mapping[str, Any]) -> SkipExisting | None:
        value = values.get("skip_existing", False)
        if value is False:
            return None
        if value == "exists" or value == "newer":
            return cast(SkipExisting, value)
        expected = 'must be false, "exists" or "newer"'
        raise self.key_error(table, "skip_existing", f"{expected}, got {got(value)}")

    def priority(self, table: Where, job: Mapping[str, Any]) -> tuple[PriorityRule, ...]:
        rules = job.get("priority", [])
        if not isinstance(rules, list) or not all(isinstance(rule, dict) for rule in rules):
            raise self.key_error(table, "priority", "must be an array of tables ([[job.priority]])")
        parsed = []
        for index, rule in enumerate(rules):
            where: Where = (*table, "priority", index)
            self.check_keys(where, rule, _RULE_KEYS)
            match = self.required_text(where, rule, "match")
            self.required(where, rule, "job_level")
            level = self.level(where, rule, "job_level")
            assert level is not None
            parsed.append(PriorityRule(match, level))
        return tuple(parsed)

    def limits(self, region: str) -> Limits:
        defaults = Limits(rate=region_quota(region))
        if "limits" not in self.data:
            return defaults
        where: Where = ("limits",)
        values = self.table(self.data, "limits", _LIMIT_KEYS)
        rate = self.number(where, values, "rate")
        if rate is not None and rate <= 0:
            raise self.key_error(where, "rate", f"must be greater than 0, got {rate:g}")
        percent = self.number(where, values, "max_failure_percent")
        if percent is not None and not 0 <= percent <= 100:
            raise self.key_error(
                where, "max_failure_percent", f"must be between 0 and 100, got {percent:g}"
            )
        same_error = self.integer(where, values, "max_consecutive_same_error", 1)
        journal = (self.text(where, values, "ledger_journal") or "auto").lower()
        if journal not in ("auto", "wal", "delete"):
            raise self.key_error(
                where, "ledger_journal", f"must be 'auto', 'wal' or 'delete', got {short(journal)}"
            )
        return Limits(
            rate=defaults.rate if rate is None else rate,
            concurrency=_or(self.integer(where, values, "concurrency", 1), defaults.concurrency),
            max_attempts=_or(self.integer(where, values, "max_attempts", 1), defaults.max_attempts),
            min_finished=_or(self.integer(where, values, "min_finished", 0), defaults.min_finished),
            max_failure_percent=defaults.max_failure_percent if percent is None else percent,
            max_consecutive_same_error=_or(same_error, defaults.max_consecutive_same_error),
            ledger_journal=cast(LedgerJournal, journal),
        )

    def notify(self) -> NotifyConfig:
        if "notify" not in self.data:
            return NotifyConfig()
        where: Where = ("notify",)
        values = self.table(self.data, "notify", _NOTIFY_KEYS)
        urls = self.get(where, values, "urls", as_strings, "an array of strings") or ()
        for n, url in enumerate(urls, 1):
            # The URL holds a robot key or token: the message names its position, never its text.
            problem = notify_url_problem(url)
            if problem is not None:
                raise self.key_error(where, "urls", f"entry {n} {problem}")
        events = self.get(where, values, "on", as_strings, "an array of strings")
        chosen = DEFAULT_EVENTS
        if events is not None:
            known = [str(event) for event in NotifyEvent]
            for event in events:
                if event not in known:
                    near = difflib.get_close_matches(event, known, n=1)
                    hint = f" (did you mean {near[0]!r}?)" if near else ""
                    raise self.key_error(
                        where, "on", f"unknown event {short(event)}; use {', '.join(known)}{hint}"
                    )
            chosen = frozenset(NotifyEvent(event) for event in events)
        heartbeat = self.text(where, values, "heartbeat")
        if heartbeat is not None and (problem := heartbeat_problem(heartbeat)) is not None:
            raise self.key_error(where, "heartbeat", problem)
        return NotifyConfig(urls=tuple(urls), on=chosen, heartbeat=heartbeat)


def _or(value: int | None, default: int) -> int:
    return default if value is None else value
