"""Checking a parsed manifest against the schema: typed values, required and unknown keys (with
the closest valid key as a hint), and one-line errors at the line that holds the problem."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

from orchestrator.exceptions import ManifestError
from orchestrator.manifest.jobs import JOB_NAME, output_clash
from orchestrator.manifest.model import (
    DEFAULT_JOB,
    EMBEDDED_ENDPOINT,
    JobConfig,
    Limits,
    Manifest,
    PriorityRule,
    SkipExisting,
    SourceConfig,
    SourceKind,
    Target,
)
from orchestrator.manifest.reading import Locator, Where, read_toml
from orchestrator.manifest.values import (
    DATE_EXPECTED,
    as_bool,
    as_float,
    as_int,
    as_str,
    as_strings,
    as_utc,
    cut,
    got,
    is_http_url,
    output_template_problem,
    short,
    user_data_problem,
)

__all__ = ["Validator", "load_manifest"]


def load_manifest(path: str | Path) -> Manifest:
    """Read, parse and validate a manifest; every problem is a one-line ManifestError."""
    shown = str(path)
    text, data = read_toml(Path(path), shown)
    return Validator(shown, Path(path).resolve(), text, data).manifest()


T = TypeVar("T")
_NAME = re.compile(r"^[A-Za-z0-9._-]+$")

_ROOT_KEYS = ("name", "ledger", "ledger_sync")
_ROOT_TABLES = ("target", "source", "job", "limits")
_TARGET_KEYS = ("bucket", "region", "queue_id", "endpoint")
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
)
_RULE_KEYS = ("match", "job_level")
_LIMIT_KEYS = (
    "rate",
    "concurrency",
    "max_attempts",
    "min_finished",
    "max_failure_percent",
    "max_consecutive_same_error",
)


def _label(where: Where) -> str:
    """`[job]` for a table, `[job.priority #2]` for the second table of an array."""
    names = ".".join(str(part) for part in where if isinstance(part, str))
    index = [part for part in where if isinstance(part, int)]
    if not names:
        return ""
    suffix = f" #{index[-1] + 1}" if index else ""
    return f"[{names}{suffix}] "


class Validator:
    """Builds a Manifest from parsed TOML, raising at the first problem it finds."""

    def __init__(self, shown: str, path: Path, text: str, data: dict[str, Any]) -> None:
        self.shown = shown
        self.path = path
        self.locator = Locator(text)
        self.data = data

    # Errors

    def error(self, where: Where, message: str) -> ManifestError:
        number = self.locator.line(where)
        location = self.shown if number is None else f"{self.shown}:{number}"
        return ManifestError(f"{location}: {message}")

    def key_error(self, table: Where, key: str, problem: str) -> ManifestError:
        return self.error((*table, key), f"{_label(table)}{key}: {problem}")

    def check_keys(self, table: Where, values: Mapping[str, Any], valid: Sequence[str]) -> None:
        for key, value in values.items():
            if key in valid:
                continue
            if not table and isinstance(value, dict):
                near = difflib.get_close_matches(key, _ROOT_TABLES, n=1)
                hint = f" (did you mean [{near[0]}]?)" if near else ""
                raise self.error((key,), f"unknown table [{cut(key)}]{hint}")
            near = difflib.get_close_matches(key, valid, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise self.error((*table, key), f"{_label(table)}unknown key {short(key)}{hint}")

    # Typed getters: each returns the default when the key is absent

    def get(
        self,
        table: Where,
        values: Mapping[str, Any],
        key: str,
        convert: Callable[[Any], T | None],
        expected: str,
    ) -> T | None:
        if key not in values:
            return None
        value = values[key]
        result = convert(value)
        if result is None:
            raise self.key_error(table, key, f"must be {expected}, got {got(value)}")
        return result

    def required(self, table: Where, values: Mapping[str, Any], key: str) -> None:
        if key not in values:
            raise self.error(table, f"{_label(table)}missing required key {key!r}")

    def text(
        self, table: Where, values: Mapping[str, Any], key: str, *, allow_empty: bool = False
    ) -> str | None:
        found = self.get(table, values, key, as_str, "a string")
        if found == "" and not allow_empty:
            raise self.key_error(table, key, "must not be empty")
        return found

    def required_text(
        self, table: Where, values: Mapping[str, Any], key: str, *, allow_empty: bool = False
    ) -> str:
        self.required(table, values, key)
        found = self.text(table, values, key, allow_empty=allow_empty)
        assert found is not None
        return found

    def integer(
        self, table: Where, values: Mapping[str, Any], key: str, minimum: int
    ) -> int | None:
        found = self.get(table, values, key, as_int, "an integer")
        if found is not None and found < minimum:
            raise self.key_error(table, key, f"must be at least {minimum}, got {cut(str(found))}")
        return found

    def number(self, table: Where, values: Mapping[str, Any], key: str) -> float | None:
        return self.get(table, values, key, as_float, "a finite number")

    def flag(self, table: Where, values: Mapping[str, Any], key: str) -> bool:
        return self.get(table, values, key, as_bool, "true or false") or False

    def level(self, table: Where, values: Mapping[str, Any], key: str) -> int | None:
        found = self.get(table, values, key, as_int, "an integer")
        if found is not None and found not in (0, 1, 2):
            raise self.key_error(table, key, f"must be 0, 1 or 2, got {cut(str(found))}")
        return found

    def table(self, values: Mapping[str, Any], key: str, valid: Sequence[str]) -> dict[str, Any]:
        if key not in values:
            raise self.error((), f"missing required table [{key}]")
        found = values[key]
        if not isinstance(found, dict):
            raise self.error((key,), f"{key}: must be a table, got {got(found)}")
        self.check_keys((key,), found, valid)
        return found

    def one_of(self, table: Where, values: Mapping[str, Any], keys: Sequence[str]) -> str:
        present = [key for key in keys if key in values]
        if len(present) == 1:
            return present[0]
        options = ", ".join(keys[:-1]) + f" or {keys[-1]}"
        got = " and ".join(present) if present else "none"
        where = (*table, present[-1]) if present else table
        raise self.error(where, f"{_label(table)}needs exactly one of {options}, got {got}")

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
            limits=self.limits(),
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
        return Target(bucket, region, self.text(where, values, "queue_id"), endpoint)

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
        if callback is not None and not is_http_url(callback):
            raise self.key_error(
                where, "callback", f"must be an http(s) URL, got {short(callback)}"
            )
        callback_format = self.text(where, values, "callback_format")
        if callback_format not in (None, "JSON", "XML"):
            raise self.key_error(
                where, "callback_format", f"must be 'JSON' or 'XML', got {short(callback_format)}"
            )
        callback_type = self.text(where, values, "callback_type")
        if callback_type not in (None, "Url"):
            raise self.key_error(
                where, "callback_type", f"must be 'Url', got {short(callback_type)}"
            )
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
            name=DEFAULT_JOB if name is None else name,
            named=name is not None,
            skip_existing=self.skip_existing(where, values),
        )

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

    def limits(self) -> Limits:
        if "limits" not in self.data:
            return Limits()
        where: Where = ("limits",)
        values = self.table(self.data, "limits", _LIMIT_KEYS)
        defaults = Limits()
        rate = self.number(where, values, "rate")
        if rate is not None and rate <= 0:
            raise self.key_error(where, "rate", f"must be greater than 0, got {rate:g}")
        percent = self.number(where, values, "max_failure_percent")
        if percent is not None and not 0 <= percent <= 100:
            raise self.key_error(
                where, "max_failure_percent", f"must be between 0 and 100, got {percent:g}"
            )
        same_error = self.integer(where, values, "max_consecutive_same_error", 1)
        return Limits(
            rate=defaults.rate if rate is None else rate,
            concurrency=_or(self.integer(where, values, "concurrency", 1), defaults.concurrency),
            max_attempts=_or(self.integer(where, values, "max_attempts", 1), defaults.max_attempts),
            min_finished=_or(self.integer(where, values, "min_finished", 0), defaults.min_finished),
            max_failure_percent=defaults.max_failure_percent if percent is None else percent,
            max_consecutive_same_error=_or(same_error, defaults.max_consecutive_same_error),
        )


def _or(value: int | None, default: int) -> int:
    return default if value is None else value
