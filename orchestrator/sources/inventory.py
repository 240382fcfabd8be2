"""Objects from a COS inventory report: its manifest.json, then each gzip CSV it names.

Column order comes from `fileSchema`; keys are URL-encoded in the CSV and decoded here.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import AsyncIterator
from urllib.parse import unquote

from orchestrator.ci.client import CIClient
from orchestrator.exceptions import CIError, SourceError
from orchestrator.items import ObjectRef

__all__ = ["iter_inventory", "parse_manifest"]


def parse_manifest(data: bytes, shown: str) -> tuple[list[str], list[str]]:
    """The column names and the report file keys of an inventory manifest.json."""
    try:
        manifest = json.loads(data)
        schema = [c.strip() for c in str(manifest["fileSchema"]).split(",")]
        files = [str(f["key"]) for f in manifest["files"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise SourceError(f"{shown}: not a COS inventory manifest ({exc!r})") from None
    if "Key" not in schema:
        raise SourceError(f"{shown}: fileSchema has no Key column")
    return schema, files


async def iter_inventory(
    client: CIClient, bucket: str, manifest_key: str, batch: int = 1000
) -> AsyncIterator[list[ObjectRef]]:
    shown = f"inventory {manifest_key!r}"
    try:
        schema, files = parse_manifest(await client.get_object(manifest_key), shown)
    except CIError as exc:
        raise SourceError(f"{shown}: cannot read: {exc}") from None
    column = {name.lower(): i for i, name in enumerate(schema)}
    for file_key in files:
        try:
            raw = await client.get_object(file_key)
        except CIError as exc:
            raise SourceError(f"{shown}: cannot read report file {file_key!r}: {exc}") from None
        try:
            text = io.TextIOWrapper(gzip.GzipFile(fileobj=io.BytesIO(raw)), encoding="utf-8")
            rows: list[ObjectRef] = []
            for line, row in enumerate(csv.reader(text), start=1):
                if not row:
                    continue
                rows.append(_ref(row, column, bucket, f"{file_key}:{line}"))
                if len(rows) >= batch:
                    yield rows
                    rows = []
            if rows:
                yield rows
        except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
            raise SourceError(f"{shown}: report file {file_key!r} unreadable: {exc}") from None


def _ref(row: list[str], column: dict[str, int], bucket: str, where: str) -> ObjectRef:
    def cell(name: str) -> str | None:
        i = column.get(name)
        return row[i] if i is not None and i < len(row) else None

    key = cell("key")
    if not key:
        raise SourceError(f"{where}: row has no key")
    size = cell("size")
    return ObjectRef(
        bucket=bucket,  # the CSV names the bucket without its APPID
        key=unquote(key),
        size=int(size) if size and size.isdigit() else None,
        etag=(cell("etag") or "").strip('"') or None,
        last_modified=cell("lastmodifieddate") or None,
    )
