"""Object keys from a CSV file: with a header naming columns, or COS/S3 batch-manifest rows.

With a header (a first row with a cell `key`) the columns are `key` and optionally `bucket`,
`output`, `job_level`, `user_data` and `job` (the one manifest job to plan the row for; empty
means every job), all taken literally. Without one, rows are
`bucket,key[,versionId]` as in COS and S3 batch manifests, with URL-encoded keys.
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote

from orchestrator.exceptions import SourceError
from orchestrator.items import ObjectRef
from orchestrator.manifest import user_data_problem
from orchestrator.textfile import UTF8_BOM, NotText, decode_utf8, foreign_encoding, opened

__all__ = ["COLUMNS", "MAX_FIELD", "iter_csv"]

COLUMNS = ("key", "bucket", "output", "job_level", "user_data", "job")
MAX_FIELD = 1024 * 1024  # characters
# Bounds the memory one physical line may take, whatever its fields.
_MAX_LINE = 8 * MAX_FIELD  # bytes
# COS bucket names are BucketName-APPID: lower-case letters, digits and '-', then the APPID.
_BUCKET = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?-[0-9]+")


def iter_csv(path: Path, default_bucket: str) -> Iterator[ObjectRef]:
    """Stream the objects a CSV file names, one row at a time. Errors are SourceErrors that name
    the file and the physical line: `keys.csv:12: empty key`."""
    shown = str(path)
    # The module default (128 Ki characters) is below our documented limit; only ever raise it.
    if csv.field_size_limit() < MAX_FIELD:
        csv.field_size_limit(MAX_FIELD)
    with opened(path, shown, "a CSV file", SourceError) as handle:
        reader = csv.reader(_lines(handle, shown), strict=True)
        build: _Builder | None = None
        end = 0
        while True:
            start = end + 1  # the physical line this record starts on
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                if "field larger than field limit" in str(exc):
                    raise SourceError(f"{shown}:{start}: a field is larger than 1 MiB") from None
                raise SourceError(f"{shown}:{start}: malformed CSV ({exc})") from None
            end = reader.line_num
            if not "".join(row).strip():  # a blank line, or only empty cells
                continue
            if max(map(len, row)) > MAX_FIELD:
                raise SourceError(f"{shown}:{start}: a field is larger than 1 MiB")
            if build is None:
                if any(cell.strip().lower() == "key" for cell in row):
                    build = _header_builder(_header(row, shown, start), shown, default_bucket)
                    continue
                _check_first_batch_row(row, shown, start)
                build = functools.partial(_batch_row, shown=shown, default_bucket=default_bucket)
            yield build(row, start)


_Builder = Callable[[list[str], int], ObjectRef]


def _lines(handle: BinaryIO, shown: str) -> Iterator[str]:
    """Physical lines, decoded strictly as UTF-8, line endings kept for the csv module."""
    limit = _MAX_LINE + 1
    raw = handle.readline(limit)
    encoding = foreign_encoding(raw)
    if encoding is not None:
        raise SourceError(
            f"{shown}: the file is {encoding} (it starts with a byte-order mark); save it as UTF-8"
        )
    raw = raw.removeprefix(UTF8_BOM)
    number = 1
    while raw:
        if len(raw) > _MAX_LINE:
            raise SourceError(f"{shown}:{number}: line is longer than {_MAX_LINE // 2**20} MiB")
        line = decode_utf8(raw)
        if isinstance(line, NotText):
            raise SourceError(_not_text(shown, number, line))
        yield line
        raw = handle.readline(limit)
        number += 1


def _not_text(shown: str, number: int, where: NotText) -> str:
    if where.nul:
        return (
            f"{shown}:{number}: contains a NUL byte (is it UTF-16 without a byte-order mark,"
            " or not text at all?)"
        )
    return (
        f"{shown}:{number}: not valid UTF-8 (byte 0x{where.byte:02x} at column {where.column};"
        " Latin-1 or another legacy encoding?); save the file as UTF-8"
    )


def _header(row: list[str], shown: str, line: int) -> tuple[str, ...]:
    names = tuple(cell.strip().lower() for cell in row)
    if "" in names:
        raise SourceError(
            f"{shown}:{line}: the header has an empty column name (column {names.index('') + 1})"
        )
    unknown = [name for name in names if name not in COLUMNS]
    if unknown:
        listed = ", ".join(repr(name) for name in unknown)
        plural = "s" if len(unknown) > 1 else ""
        raise SourceError(
            f"{shown}:{line}: unknown column{plural} {listed}; the columns are {', '.join(COLUMNS)}"
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise SourceError(f"{shown}:{line}: column {repeated[0]!r} appears twice in the header")
    return names


def _check_first_batch_row(row: list[str], shown: str, line: int) -> None:
    """A first row without a `key` cell is a bucket,key row only if it starts with a bucket:
    `path,bucket` or `name,size` is a header that lacks its `key` column, not two objects."""
    bucket = row[0].strip()
    if len(row) in (2, 3) and bucket and not _BUCKET.fullmatch(bucket):
        raise SourceError(
            f"{shown}:{line}: the header has no 'key' column (or, if this is a"
            f" bucket,key[,versionId] row, {bucket[:60]!r} is not a BucketName-APPID);"
            f" the columns are {', '.join(COLUMNS)}"
        )


def _header_builder(header: tuple[str, ...], shown: str, default_bucket: str) -> _Builder:
    """Turns the rows under `header` into ObjectRefs, with the columns located once."""
    width = len(header)
    at = {name: index for index, name in enumerate(header)}
    key_at = at["key"]
    bucket_at, output_at = at.get("bucket"), at.get("output")
    level_at, data_at = at.get("job_level"), at.get("user_data")
    job_at = at.get("job")

    def build(row: list[str], line: int) -> ObjectRef:
        if len(row) != width:
            raise SourceError(
                f"{shown}:{line}: expected {width} columns ({', '.join(header)}), got {len(row)}"
            )
        key = row[key_at]
        if not key.strip():
            raise SourceError(f"{shown}:{line}: empty key")
        user_data = None if data_at is None else row[data_at] or None
        if user_data is not None and (problem := user_data_problem(user_data)) is not None:
            raise SourceError(f"{shown}:{line}: user_data {problem}")
        return ObjectRef(  # positional, a third faster: bucket, key, size, etag, last_modified
            (row[bucket_at].strip() if bucket_at is not None else "") or default_bucket,
            key,
            None,
            None,
            None,
            None if output_at is None else row[output_at] or None,  # output_key
            None if level_at is None else _job_level(row[level_at], shown, line),  # job_level
            user_data,
            line,
            None if job_at is None else row[job_at].strip() or None,  # job
        )

    return build


def _job_level(cell: str, shown: str, line: int) -> int | None:
    value = cell.strip()
    if not value:
        return None
    if value not in ("0", "1", "2"):
        raise SourceError(f"{shown}:{line}: job_level must be 0, 1 or 2, got {cell!r}")
    return int(value)


def _batch_row(row: list[str], line: int, *, shown: str, default_bucket: str) -> ObjectRef:
    if len(row) not in (2, 3):
        raise SourceError(
            f"{shown}:{line}: expected 2 or 3 columns (bucket,key[,versionId]) or a header"
            f" row with a 'key' column, got {len(row)}"
        )
    encoded = row[1].strip()
    try:
        # unquote, not unquote_plus: batch manifests encode '+' as %2B and a space as %20.
        key = unquote(encoded, errors="strict")
    except UnicodeDecodeError:
        raise SourceError(
            f"{shown}:{line}: key {encoded!r} is not valid URL-encoded UTF-8"
        ) from None
    if not key:
        raise SourceError(f"{shown}:{line}: empty key")
    return ObjectRef(bucket=row[0].strip() or default_bucket, key=key, line=line)
