"""The manifest: frozen dataclasses, loaded from TOML, validated with one-line located errors."""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
import string
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, Literal, TypeVar, cast
from urllib.parse import urlsplit

from orchestrator.cloud.regions import CREDENTIAL_CHOICES, MQ_MODES, MQ_REGIONS, region_quota
from orchestrator.exceptions import ManifestError

__all__ = [
    "EMBEDDED_ENDPOINT",
    "MAX_MANIFEST_BYTES",
    "MAX_USER_DATA",
    "OUTPUT_PLACEHOLDERS",
    "JobConfig",
    "Limits",
    "Manifest",
    "PriorityRule",
    "SourceConfig",
    "SourceKind",
    "Target",
    "is_printable_ascii",
    "load_manifest",
    "output_template_problem",
    "user_data_problem",
]

SourceKind = Literal["prefix", "csv", "inventory"]
OUTPUT_PLACEHOLDERS = ("key", "dir", "name", "stem", "ext")
MAX_USER_DATA = 1024
# Far beyond any hand-written manifest; bounds what a wrong path can make us read.
MAX_MANIFEST_BYTES = 1024 * 1024
# `[target] endpoint = "embedded"` runs the emulator in-process (the demo does).
EMBEDDED_ENDPOINT = "embedded"


@dataclass(frozen=True, slots=True)
class Target:
    """_Where the inputs live and where CI and COS calls go."""

    bucket: str
    region: str
    queue_id: str | None = None
    endpoint: str | None = None
    credentials: str = "auto"
    profile: str | None = None
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


@dataclass(frozen=True, slots=True)
class Limits:
    """Pacing, retries and the failure breaker. `rate` defaults to the region's quota."""

    rate: float = 100.0
    concurrency: int = 16
    max_attempts: int = 5
    min_finished: int = 100
    max_failure_percent: float = 50.0
    max_consecutive_same_error: int = 20


@dataclass(frozen=True, slots=True)
class Manifest:
    """One validated manifest file."""

    name: str
    path: Path
    ledger_path: Path
    target: Target
    source: SourceConfig
    job: JobConfig
    limits: Limits = field(default_factory=Limits)
    # SQLite `synchronous`: NORMAL survives a killed process; FULL also survives power loss.
    ledger_sync: Literal["NORMAL", "FULL"] = "NORMAL"

    @property
    def operation_fingerprint(self) -> str:
        """A short digest of what is done to each object: a new operation makes new items."""
        operation = [
            "PicProcess",
            self.job.template_id,
            self.job.process_rule,
            self.job.is_pic_info,
        ]
        encoded = json.dumps(operation, separators=(",", ":")).encode()
        return hashlib.sha256(encoded).hexdigest()[:16]


def is_printable_ascii(text: str) -> bool:
    """True when every character is in 0x20..0x7e."""
    return all(" " <= ch <= "~" for ch in text)


def load_manifest(path: str | Path) -> Manifest:
    """Read, parse and validate a manifest; every problem is a one-line ManifestError."""
    shown = str(path)
    text = _read_text(Path(path), shown)
    _check_key_depth(shown, text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(_syntax_message(shown, text, str(exc))) from None
    except ValueError:  # int()'s limit on decimal digits, which tomllib lets through
        limit = sys.get_int_max_str_digits()
        found = re.search(rf"[0-9_]{{{limit + 1},}}", text)
        line = "" if found is None else f":{text.count(chr(10), 0, found.start()) + 1}"
        raise ManifestError(f"{shown}{line}: a number of more than {limit} digits") from None
    except RecursionError:
        lines = text.splitlines()
        deep = (n for n, line in enumerate(lines, 1) if line.count("[") + line.count("{") > 100)
        line = next((f":{number}" for number in deep), "")
        raise ManifestError(f"{shown}{line}: arrays or inline tables nested too deeply") from None
    return _Validator(shown, Path(path).resolve(), text, data).manifest()


# Reading


def _read_text(path: Path, shown: str) -> str:
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        raise ManifestError(f"{shown}: no such file") from None
    except IsADirectoryError:
        raise ManifestError(f"{shown}: is a directory, not a manifest file") from None
    except OSError as exc:
        raise ManifestError(f"{shown}: cannot read: {exc.strerror}") from None
    if len(raw) > MAX_MANIFEST_BYTES:
        line = raw.count(b"\n") + 1
        raise ManifestError(
            f"{shown}:{line}: the file grows past {MAX_MANIFEST_BYTES // 2**20} MiB on this"
            " line; a manifest is a small text file (is this the right file?)"
        )
    for bom, encoding in _FOREIGN_BOMS:
        if raw.startswith(bom):
            raise ManifestError(
                f"{shown}: the file is {encoding} (it has a byte-order mark); save it as UTF-8"
            )
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    nul = raw.find(b"\x00")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        raise ManifestError(
            f"{shown}:{line}: the file contains a NUL byte; a manifest is UTF-8 text"
            " (is it UTF-16 or binary?)"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        byte = raw[exc.start]
        raise ManifestError(
            f"{shown}:{line}: not valid UTF-8 (byte 0x{byte:02x}; Latin-1 or another legacy"
            " encoding?); save the file as UTF-8"
        ) from None


# UTF-32 first: its little-endian mark begins with UTF-16's.
_FOREIGN_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)

_TOML_WHERE = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)$")


def _syntax_message(shown: str, text: str, message: str) -> str:
    found = _TOML_WHERE.search(message)
    if found is None:
        return f"{shown}: {message}"
    what = message[: found.start()]
    if found.group(1) is None:
        return f"{shown}:{max(len(text.splitlines()), 1)}: {what} (at end of document)"
    return f"{shown}:{found.group(1)}: {what} (column {found.group(2)})"


# Locating keys in the text


_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*\]\]?\s*(?:#.*)?$")
_ASSIGN = re.compile(rf"^\s*({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*=")
_PART = re.compile(_KEY_PART)

_Where = tuple[str | int, ...]


def _split_key(dotted: str) -> tuple[str, ...]:
    return tuple(part.strip("\"'") for part in _PART.findall(dotted))


# No manifest key has more than 3 parts; tomllib takes quadratic time in the number of parts.
_MAX_KEY_PARTS = 16
_LINE_KEY = re.compile(rf"^\s*\[{{0,2}}\s*({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)")


def _check_key_depth(shown: str, text: str) -> None:
    for number, line in enumerate(text.splitlines(), start=1):
        found = _LINE_KEY.match(line)
        if found is None or found.group(1).count(".") < _MAX_KEY_PARTS:
            continue
        parts = len(_split_key(found.group(1)))
        if parts > _MAX_KEY_PARTS:
            raise ManifestError(
                f"{shown}:{number}: a key of {parts} dotted parts; no manifest key has more than 3"
            )


class _Locator:
    """Maps table and key paths to the first line naming them; arrays of tables get an index."""

    def __init__(self, text: str) -> None:
        self._lines: dict[_Where, int] = {}
        table: _Where = ()
        counts: dict[tuple[str, ...], int] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            header = _HEADER.match(line)
            if header is not None:
                names = _split_key(header.group(2))
                table = names
                if header.group(1) == "[[":
                    counts[names] = counts.get(names, 0) + 1
                    table = (*names, counts[names] - 1)
                self._lines.setdefault(table, number)
                self._lines.setdefault(names, number)
                continue
            assign = _ASSIGN.match(line)
            if assign is not None:
                self._lines.setdefault((*table, *_split_key(assign.group(1))), number)

    def line(self, where: _Where) -> int | None:
        """The line of `where`, else of the nearest enclosing table or key that is written out."""
        for end in range(len(where), 0, -1):
            number = self._lines.get(where[:end])
            if number is not None:
                return number
        return None


# Validation

T = TypeVar("T")
_NAME = re.compile(r"^[A-Za-z0-9._-]+$")

_ROOT_KEYS = ("name", "ledger", "ledger_sync")
_ROOT_TABLES = ("target", "source", "job", "limits")
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
)


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, datetime):
        return "datetime"
    names = {str: "string", int: "integer", float: "float", list: "array", dict: "table"}
    names |= {date: "date", time: "time"}
    return names.get(type(value), type(value).__name__)


def _got(value: object) -> str:
    if isinstance(value, list | dict):
        return _type_name(value)
    shown = repr(value) if isinstance(value, str) else str(value).lower()
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{_type_name(value)} {shown}"


def _cut(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short(text: str) -> str:
    """`text` quoted as repr() does, cut to 60 characters: messages stay one readable line."""
    shown = repr(text)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _label(where: _Where) -> str:
    """`[job]` for a table, `[job.priority #2]` for the second table of an array."""
    names = ".".join(str(part) for part in where if isinstance(part, str))
    index = [part for part in where if isinstance(part, int)]
    if not names:
        return ""
    suffix = f" #{index[-1] + 1}" if index else ""
    return f"[{names}{suffix}] "


class _Validator:
    def __init__(self, shown: str, path: Path, text: str, data: dict[str, Any]) -> None:
        self.shown = shown
        self.path = path
        self.locator = _Locator(text)
        self.data = data

    # Errors

    def error(self, where: _Where, message: str) -> ManifestError:
        number = self.locator.line(where)
        location = self.shown if number is None else f"{self.shown}:{number}"
        return ManifestError(f"{location}: {message}")

    def key_error(self, table: _Where, key: str, problem: str) -> ManifestError:
        return self.error((*table, key), f"{_label(table)}{key}: {problem}")

    def check_keys(self, table: _Where, values: Mapping[str, Any], valid: Sequence[str]) -> None:
        for key, value in values.items():
            if key in valid:
                continue
            if not table and isinstance(value, dict):
                near = difflib.get_close_matches(key, _ROOT_TABLES, n=1)
                hint = f" (did you mean [{near[0]}]?)" if near else ""
                raise self.error((key,), f"unknown table [{_cut(key)}]{hint}")
            near = difflib.get_close_matches(key, valid, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise self.error((*table, key), f"{_label(table)}unknown key {_short(key)}{hint}")

    # Typed getters: each returns the default when the key is absent

    def get(
        self,
        table: _Where,
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
            raise self.key_error(table, key, f"must be {expected}, got {_got(value)}")
        return result

    def required(self, table: _Where, values: Mapping[str, Any], key: str) -> None:
        if key not in values:
            raise self.error(table, f"{_label(table)}missing required key {key!r}")

    def text(
        self, table: _Where, values: Mapping[str, Any], key: str, *, allow_empty: bool = False
    ) -> str | None:
        found = self.get(table, values, key, _as_str, "a string")
        if found == "" and not allow_empty:
            raise self.key_error(table, key, "must not be empty")
        return found

    def required_text(
        self, table: _Where, values: Mapping[str, Any], key: str, *, allow_empty: bool = False
    ) -> str:
        self.required(table, values, key)
        found = self.text(table, values, key, allow_empty=allow_empty)
        assert found is not None
        return found

    def integer(
        self, table: _Where, values: Mapping[str, Any], key: str, minimum: int
    ) -> int | None:
        found = self.get(table, values, key, _as_int, "an integer")
        if found is not None and found < minimum:
            raise self.key_error(table, key, f"must be at least {minimum}, got {_cut(str(found))}")
        return found

    def number(self, table: _Where, values: Mapping[str, Any], key: str) -> float | None:
        return self.get(table, values, key, _as_float, "a finite number")

    def flag(self, table: _Where, values: Mapping[str, Any], key: str) -> bool:
        return self.get(table, values, key, _as_bool, "true or false") or False

    def level(self, table: _Where, values: Mapping[str, Any], key: str) -> int | None:
        found = self.get(table, values, key, _as_int, "an integer")
        if found is not None and found not in (0, 1, 2):
            raise self.key_error(table, key, f"must be 0, 1 or 2, got {_cut(str(found))}")
        return found

    def table(self, values: Mapping[str, Any], key: str, valid: Sequence[str]) -> dict[str, Any]:
        if key not in values:
            raise self.error((), f"missing required table [{key}]")
        found = values[key]
        if not isinstance(found, dict):
            raise self.error((key,), f"{key}: must be a table, got {_got(found)}")
        self.check_keys((key,), found, valid)
        return found

    def one_of(self, table: _Where, values: Mapping[str, Any], keys: Sequence[str]) -> str:
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
                (), "name", f"must use only letters, digits, '.', '_' and '-', got {_short(name)}"
            )
        base = self.path.parent
        ledger = self.text((), data, "ledger")
        target = self.target()
        sync = self.text((), data, "ledger_sync") or "normal"
        if sync.lower() not in ("normal", "full"):
            raise self.key_error(
                (), "ledger_sync", f"must be 'normal' or 'full', got {_short(sync)}"
            )
        return Manifest(
            name=name,
            path=self.path,
            ledger_path=base / ledger if ledger else base / ".picjobs" / f"{name}.sqlite",
            target=target,
            source=self.source(),
            job=self.job(target),
            limits=self.limits(target.region),
            ledger_sync="FULL" if sync.lower() == "full" else "NORMAL",
        )

    def target(self) -> Target:
        where: _Where = ("target",)
        values = self.table(self.data, "target", _TARGET_KEYS)
        bucket = self.required_text(where, values, "bucket")
        region = self.required_text(where, values, "region")
        endpoint = self.text(where, values, "endpoint")
        if endpoint is not None and endpoint != EMBEDDED_ENDPOINT and not _is_http_url(endpoint):
            raise self.key_error(
                where,
                "endpoint",
                f"must be an http(s) URL or {EMBEDDED_ENDPOINT!r}, got {_short(endpoint)}",
            )
        choice = self.text(where, values, "credentials") or "auto"
        if choice not in CREDENTIAL_CHOICES:
            raise self.key_error(
                where,
                "credentials",
                f"must be one of {', '.join(CREDENTIAL_CHOICES)}, got {_short(choice)}",
            )
        urls = {}
        for key in ("ci_endpoint", "cos_endpoint"):
            urls[key] = self.text(where, values, key)
            if urls[key] is not None and not _is_http_url(urls[key] or ""):
                raise self.key_error(
                    where, key, f"must be an http(s) URL, got {_short(urls[key] or '')}"
                )
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
        where: _Where = ("source",)
        values = self.table(self.data, "source", _SOURCE_KEYS)
        kind = self.one_of(where, values, _SOURCE_KINDS)
        # An empty prefix is the whole bucket.
        location = self.required_text(where, values, kind, allow_empty=kind == "prefix")
        include = self.globs(where, values, "include")
        exclude = self.globs(where, values, "exclude")
        min_size = self.integer(where, values, "min_size", 0)
        max_size = self.integer(where, values, "max_size", 0)
        after = self.get(where, values, "modified_after", _as_utc, _DATE_EXPECTED)
        before = self.get(where, values, "modified_before", _as_utc, _DATE_EXPECTED)
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

    def globs(self, table: _Where, values: Mapping[str, Any], key: str) -> tuple[str, ...]:
        found = self.get(table, values, key, _as_strings, "an array of strings") or ()
        if "" in found:
            raise self.key_error(table, key, "must not contain an empty pattern")
        return found

    def job(self, target: Target) -> JobConfig:
        where: _Where = ("job",)
        values = self.table(self.data, "job", _JOB_KEYS)
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
        if callback is not None and callback != "no" and not _is_http_url(callback):
            raise self.key_error(
                where, "callback", f"must be an http(s) URL or 'no', got {_short(callback)}"
            )
        callback_format = self.text(where, values, "callback_format")
        if callback_format not in (None, "JSON", "XML"):
            raise self.key_error(
                where, "callback_format", f"must be 'JSON' or 'XML', got {_short(callback_format)}"
            )
        callback_type = self.text(where, values, "callback_type")
        if callback_type not in (None, "Url", "TDMQ"):
            raise self.key_error(
                where, "callback_type", f"must be 'Url' or 'TDMQ', got {_short(callback_type)}"
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
            priority=self.priority(values),
            reprocess_changed=self.flag(where, values, "reprocess_changed"),
            callback_mq=callback_mq,
        )

    def callback_mq(
        self, job: Mapping[str, Any], callback_type: str | None
    ) -> tuple[str, str, str] | None:
        where: _Where = ("job", "callback_mq")
        if "callback_mq" not in job:
            if callback_type == "TDMQ":
                raise self.error(
                    ("job", "callback_type"),
                    "[job] callback_type 'TDMQ' needs a [job.callback_mq] table",
                )
            return None
        values = job["callback_mq"]
        if not isinstance(values, dict):
            raise self.key_error(("job",), "callback_mq", f"must be a table, got {_got(values)}")
        if callback_type != "TDMQ":
            raise self.error(where, "[job.callback_mq] needs callback_type = 'TDMQ' in [job]")
        self.check_keys(where, values, _MQ_KEYS)
        region = self.required_text(where, values, "region")
        if region not in MQ_REGIONS:
            raise self.key_error(
                where, "region", f"must be one of {', '.join(MQ_REGIONS)}, got {_short(region)}"
            )
        mode = self.text(where, values, "mode") or "Queue"
        if mode not in MQ_MODES:
            raise self.key_error(where, "mode", f"must be 'Queue' or 'Topic', got {_short(mode)}")
        return region, mode, self.required_text(where, values, "name")

    def priority(self, job: Mapping[str, Any]) -> tuple[PriorityRule, ...]:
        rules = job.get("priority", [])
        if not isinstance(rules, list) or not all(isinstance(rule, dict) for rule in rules):
            raise self.key_error(
                ("job",), "priority", "must be an array of tables ([[job.priority]])"
            )
        parsed = []
        for index, rule in enumerate(rules):
            where: _Where = ("job", "priority", index)
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
        where: _Where = ("limits",)
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


# Value checks shared with the CSV source and the planner


def output_template_problem(template: str) -> str | None:
    """Why `template` is not a valid output template, or None when it is."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"malformed braces in {_short(template)} ({exc}; write '{{{{' or '}}}}' for a literal brace)"
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in OUTPUT_PLACEHOLDERS:
            allowed = " ".join("{" + known + "}" for known in OUTPUT_PLACEHOLDERS)
            shown = name if len(name) <= 40 else name[:37] + "..."
            return f"unknown placeholder {{{shown}}} in {_short(template)}; use {allowed}"
        if spec or conversion:
            return (
                f"placeholder {{{name}}} takes no conversion or format spec in {_short(template)}"
            )
    if template.startswith("/"):
        return f"must not start with '/', got {_short(template)}"
    return None


def user_data_problem(user_data: str) -> str | None:
    """Why `user_data` cannot be sent to CI, or None when it can."""
    if not is_printable_ascii(user_data):
        return f"must be printable ASCII (0x20..0x7e), got {_short(user_data)}"
    if len(user_data) > MAX_USER_DATA:
        return f"must be at most {MAX_USER_DATA} characters, got {len(user_data)}"
    return None


_DATE_EXPECTED = "an ISO date or datetime such as 2024-05-01 or 2024-05-01T10:00:00Z"


def _as_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _as_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _as_float(value: object) -> float | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer beyond the largest float
        return None
    return number if math.isfinite(number) else None


def _as_bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _as_strings(value: object) -> tuple[str, ...] | None:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    return None


def _as_utc(value: object) -> datetime | None:
    """A TOML or ISO date/datetime as aware UTC: no offset means UTC, a date means midnight."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return None


def _is_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. a malformed IPv6 host: http://[job]/
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and value.strip() == value
