"""Objects from a COS inventory report: its manifest.json, then each CSV file it names.

The manifest (ci-api.md §11) names the columns in `fileSchema` (always Appid, Bucket and Key)
and the report files in `files`, each with its MD5. A report file is gzip CSV without a header
row, with URL-encoded keys. Each file is downloaded to a temporary file (on disk once it is
large), its checksum verified, and only then read row by row, so a report is never held whole
in memory and a download that fails half-way is simply retried.

Only current objects are yielded: folder markers (keys ending in '/'), delete markers and
noncurrent versions (in reports that include all versions) are skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import gzip
import hashlib
import io
import json
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO
from urllib.parse import unquote

from orchestrator.cloud.client import CIClient
from orchestrator.cloud.retry import Retrier
from orchestrator.exceptions import CIError, Disposition, SourceError
from orchestrator.items import ObjectRef

__all__ = ["InventoryManifest", "ReportFile", "iter_inventory", "parse_manifest"]

_GZIP_MAGIC = b"\x1f\x8b"
_IN_MEMORY = 8 * 1024 * 1024  # bytes of a report file kept in memory before spilling to disk


@dataclass(frozen=True, slots=True)
class ReportFile:
    key: str
    md5: str | None = None


@dataclass(frozen=True, slots=True)
class InventoryManifest:
    schema: list[str]
    files: list[ReportFile]
    bucket: str | None = None  # the inventoried bucket as BucketName-APPID, when the manifest says


def parse_manifest(data: bytes, shown: str) -> InventoryManifest:
    """The columns, report files and inventoried bucket of an inventory manifest.json."""
    try:
        manifest = json.loads(data)
        schema = [c.strip() for c in str(manifest["fileSchema"]).split(",")]
        files = [
            ReportFile(str(f["key"]), str(f["md5Checksum"]).lower() if "md5Checksum" in f else None)
            for f in manifest["files"]
        ]
        file_format = str(manifest.get("fileFormat", "CSV"))
        source, appid = manifest.get("sourceBucket"), manifest.get("sourceAppid")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SourceError(f"{shown}: not a COS inventory manifest ({exc!r})") from None
    if file_format.upper() != "CSV":
        raise SourceError(f"{shown}: report files are {file_format}; only CSV can be read")
    if "key" not in (column.lower() for column in schema):
        raise SourceError(f"{shown}: fileSchema has no Key column")
    bucket = None
    if source:
        bucket = str(source)
        if appid and not bucket.endswith(f"-{appid}"):
            bucket = f"{bucket}-{appid}"
    return InventoryManifest(schema, files, bucket)


async def iter_inventory(
    client: CIClient,
    bucket: str,
    manifest_key: str,
    batch: int = 1000,
    *,
    retrier: Retrier | None = None,
) -> AsyncIterator[list[ObjectRef]]:
    """The current objects an inventory report of `bucket` lists, `batch` at a time. Reads are
    retried per `retrier`; an object that is missing or refused is a SourceError."""
    retrier = retrier or Retrier()
    shown = f"inventory {manifest_key!r}"
    try:
        data = await retrier.call(
            lambda: client.get_object(manifest_key), idempotent=True, name=f"read {manifest_key!r}"
        )
    except CIError as exc:
        raise _source_error(exc, f"{shown}: cannot read it") from None
    manifest = parse_manifest(data, shown)
    if manifest.bucket is not None and manifest.bucket != bucket:
        raise SourceError(
            f"{shown}: it lists bucket {manifest.bucket!r}, but jobs can only process objects"
            f" of the target bucket {bucket!r}"
        )
    column = {name.lower(): i for i, name in enumerate(manifest.schema)}
    header = [name.lower() for name in manifest.schema]
    for report in manifest.files:
        with tempfile.SpooledTemporaryFile(max_size=_IN_MEMORY) as sink:

            async def download(key: str = report.key, into: IO[bytes] = sink) -> str:
                return await _download(client, key, into)

            try:
                digest = await retrier.call(download, idempotent=True, name=f"read {report.key!r}")
            except CIError as exc:
                raise _source_error(
                    exc, f"{shown}: cannot read report file {report.key!r}"
                ) from None
            if report.md5 is not None and digest != report.md5:
                raise SourceError(
                    f"{shown}: report file {report.key!r} has MD5 {digest}, the manifest says"
                    f" {report.md5}; is the report still being written?"
                )
            rows: list[ObjectRef] = []
            for ref in _refs(sink, report.key, column, header, bucket, shown):
                rows.append(ref)
                if len(rows) >= batch:
                    yield rows
                    rows = []
                    await asyncio.sleep(0)  # let signals and the rest of the loop in
            if rows:
                yield rows


def _source_error(exc: CIError, what: str) -> SourceError | CIError:
    """A refusal (no such object, no access) is the source's fault; anything else, such as
    an outage that outlasted the retries, stays the CIError it is."""
    return SourceError(f"{what}: {exc}") if exc.disposition is Disposition.PERMANENT else exc


async def _download(client: CIClient, key: str, sink: IO[bytes]) -> str:
    """Write the object to `sink` from its start; return the MD5 of what was written."""
    sink.seek(0)
    sink.truncate()
    digest = hashlib.md5(usedforsecurity=False)
    async with contextlib.aclosing(client.iter_object(key)) as chunks:
        async for chunk in chunks:
            digest.update(chunk)
            sink.write(chunk)
    return digest.hexdigest()


def _refs(
    sink: IO[bytes],
    file_key: str,
    column: dict[str, int],
    header: list[str],
    bucket: str,
    shown: str,
) -> Iterator[ObjectRef]:
    sink.seek(0)
    compressed = sink.read(2) == _GZIP_MAGIC
    sink.seek(0)
    # A file that arrives already decompressed (stored with Content-Encoding) is read as is.
    raw: gzip.GzipFile | IO[bytes] = gzip.GzipFile(fileobj=sink, mode="rb") if compressed else sink
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline="")
    reader = csv.reader(text, strict=True)
    where = f"{shown}: report file {file_key!r}"
    try:
        for row in reader:
            line = reader.line_num
            if not row or (line == 1 and [cell.strip().lower() for cell in row] == header):
                continue
            ref = _ref(row, column, bucket, f"{where}, line {line}")
            if ref is not None:
                yield ref
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise SourceError(f"{where} is unreadable: {exc}") from None


def _ref(row: list[str], column: dict[str, int], bucket: str, where: str) -> ObjectRef | None:
    """The object of one row, or None for a row that is not a current object."""

    def cell(name: str) -> str | None:
        i = column.get(name)
        return row[i] if i is not None and i < len(row) else None

    encoded = cell("key")
    if encoded is None:
        raise SourceError(f"{where}: {len(row)} columns, fewer than fileSchema names")
    try:
        key = unquote(encoded, errors="strict")
    except UnicodeDecodeError:
        raise SourceError(f"{where}: key {encoded!r} is not URL-encoded UTF-8") from None
    if not key:
        raise SourceError(f"{where}: the row has an empty key")
    if (
        key.endswith("/")
        or (cell("isdeletemarker") or "").strip().lower() == "true"
        or (cell("islatest") or "true").strip().lower() == "false"
    ):
        return None
    size = (cell("size") or "").strip()
    return ObjectRef(
        bucket=bucket,
        key=key,
        size=int(size) if size.isdigit() else None,
        etag=(cell("etag") or "").strip().strip('"') or None,
        last_modified=_iso(cell("lastmodifieddate")),
    )


def _iso(value: str | None) -> str | None:
    """Whole seconds in UTC, as the listing source gives them (2024-05-01T10:00:00Z); a value
    that does not parse is kept as it is, for the date filters to report."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        moment = (
            datetime.fromtimestamp(int(text), UTC)
            if text.isdigit()
            else datetime.fromisoformat(text)
        )
    except (ValueError, OverflowError, OSError):
        return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
