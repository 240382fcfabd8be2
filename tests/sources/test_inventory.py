"""The COS inventory source against the emulator: a report written into the bucket as COS writes
one (ci-api.md §11: manifest.json with fileSchema, gzip CSV files without a header, URL-encoded
keys), read directly and through a whole run."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from orchestrator.cloud.client import CIClient, ClientSettings
from orchestrator.cloud.retry import Retrier, RetryPolicy
from orchestrator.emulator.faults import FaultConfig
from orchestrator.emulator.server import EmulatorConfig, RunningEmulator, running_emulator
from orchestrator.exceptions import ServiceError, SourceError
from orchestrator.items import ObjectRef
from orchestrator.ledger import Ledger
from orchestrator.manifest import load_manifest
from orchestrator.sources.inventory import iter_inventory
from tests.engine.support import BUCKET, CREDS, TINY, run_manifest, seed, write_manifest

APPID = "1250000000"
NAME = BUCKET.removesuffix(f"-{APPID}")
SCHEMA = (
    "Appid, Bucket, Key, Size, LastModifiedDate, ETag, StorageClass, IsMultipartUploaded,"
    " ReplicationStatus"
)
VERSIONED_SCHEMA = SCHEMA + ", VersionId, IsLatest, IsDeleteMarker"
REPORTS = f"cos_bucket_inventory/{APPID}/{NAME}/daily"
MANIFEST = f"{REPORTS}/20240501/manifest.json"
FAST = RetryPolicy.for_tests()

KEYS = [
    "photos/a.png",
    "photos/with space.png",
    "photos/a+b.png",
    "photos/100%.png",
    "photos/%41.png",  # literally '%41', encoded as '%2541'
    "中文/图片.png",
    "emoji/😀.png",
    "xml/&<>\"'.png",
]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    (folder / BUCKET).mkdir(parents=True)
    return folder


@pytest.fixture
async def emulator(data: Path) -> AsyncIterator[RunningEmulator]:
    config = EmulatorConfig(data_dir=data, default_bucket=BUCKET, credentials=CREDS, rate=None)
    async with running_emulator(config) as emu:
        yield emu


@pytest.fixture
async def client(emulator: RunningEmulator) -> AsyncIterator[CIClient]:
    settings = ClientSettings(BUCKET, "ap-guangzhou", CREDS, endpoint=emulator.url)
    async with CIClient(settings) as ci:
        yield ci


def row(emu: RunningEmulator, key: str, *extra: str) -> list[str]:
    """The report row COS writes for an object of the bucket: every field quoted, key encoded."""
    meta = emu.backend.head_object(BUCKET, key)
    return [
        APPID,
        NAME,
        quote(key, safe=""),
        str(meta.size),
        meta.last_modified,
        meta.etag,
        "STANDARD",
        "false",
        "",
        *extra,
    ]


def csv_gz(rows: Sequence[Sequence[str]]) -> bytes:
    text = io.StringIO()
    csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    return gzip.compress(text.getvalue().encode())


def write_report(
    emu: RunningEmulator,
    files: Sequence[bytes],
    *,
    schema: str = SCHEMA,
    manifest_key: str = MANIFEST,
    **fields: Any,
) -> str:
    """Put the report files and their manifest.json into the bucket; return the manifest's key."""
    entries = []
    for blob in files:
        md5 = hashlib.md5(blob).hexdigest()
        key = f"{REPORTS}/data/{md5}.csv.gz"
        emu.backend.put_object(BUCKET, key, blob)
        entries.append({"key": key, "size": str(len(blob)), "md5Checksum": md5})
    manifest = {
        "sourceAppid": APPID,
        "sourceBucket": NAME,
        "destinationAppid": APPID,
        "destinationBucket": NAME,
        "fileFormat": "CSV",
        "listObjectCount": "0",
        "listStorageSize": "0",
        "filterObjectCount": "0",
        "filterStorageSize": "0",
        "fileSchema": schema,
        "files": entries,
        **fields,
    }
    emu.backend.put_object(BUCKET, manifest_key, json.dumps(manifest).encode())
    return manifest_key


async def read_all(
    client: CIClient, manifest_key: str = MANIFEST, batch: int = 1000
) -> list[list[ObjectRef]]:
    return [
        rows
        async for rows in iter_inventory(client, BUCKET, manifest_key, batch, retrier=Retrier(FAST))
    ]


# -- the source on its own


async def test_every_listed_object_comes_back_with_its_key_decoded_once_and_its_size_etag_and_time(
    data: Path, emulator: RunningEmulator, client: CIClient
) -> None:
    seed(emulator, data, KEYS)
    write_report(
        emulator,
        [
            csv_gz([row(emulator, k) for k in KEYS[:5]]),
            csv_gz([row(emulator, k) for k in KEYS[5:]]),
        ],
    )

    batches = await read_all(client)

    refs = [ref for rows in batches for ref in rows]
    assert [ref.key for ref in refs] == KEYS
    for ref in refs:
        meta = emulator.backend.head_object(BUCKET, ref.key)
        assert ref == ObjectRef(
            bucket=BUCKET,
            key=ref.key,
            size=len(TINY),
            etag=meta.etag.strip('"'),
            last_modified=meta.last_modified.replace(".000Z", "Z"),
        )


async def test_rows_come_in_batches_of_the_size_asked_for_file_by_file(
    data: Path, emulator: RunningEmulator, client: CIClient
) -> None:
    seed(emulator, data, KEYS)
    write_report(
        emulator,
        [
            csv_gz([row(emulator, k) for k in KEYS[:5]]),
            csv_gz([row(emulator, k) for k in KEYS[5:]]),
        ],
    )

    batches = await read_all(client, batch=2)

    assert [len(rows) for rows in batches] == [2, 2, 1, 2, 1]


async def test_folder_markers_delete_markers_and_noncurrent_versions_are_skipped(
    data: Path, emulator: RunningEmulator, client: CIClient
) -> None:
    seed(emulator, data, ["v/current.png", "v/old.png"])
    emulator.backend.put_object(BUCKET, "v/folder/", b"")
    rows = [
        row(emulator, "v/current.png", "v2", "true", "false"),
        row(emulator, "v/current.png", "v1", "false", "false"),
        row(emulator, "v/old.png", "v4", "true", "true"),  # deleted: the latest is a marker
        row(emulator, "v/old.png", "v3", "false", "false"),
        row(emulator, "v/folder/", "null", "true", "false"),
    ]
    write_report(emulator, [csv_gz(rows)], schema=VERSIONED_SCHEMA)

    batches = await read_all(client)

    assert [ref.key for rows in batches for ref in rows] == ["v/current.png"]


async def test_a_header_row_naming_the_schema_is_not_taken_for_an_object(
    data: Path, emulator: RunningEmulator, client: CIClient
) -> None:
    seed(emulator, data, ["h.png"])
    names = [name.strip() for name in SCHEMA.split(",")]
    write_report(emulator, [csv_gz([names, row(emulator, "h.png")])])

    batches = await read_all(client)

    assert [ref.key for rows in batches for ref in rows] == ["h.png"]


async def test_a_report_file_stored_uncompressed_is_read_as_it_is(
    data: Path, emulator: RunningEmulator, client: CIClient
) -> None:
    seed(emulator, data, ["plain.png"])
    write_report(emulator, [gzip.decompress(csv_gz([row(emulator, "plain.png")]))])

    batches = await read_all(client)

    assert [ref.key for rows in batches for ref in rows] == ["plain.png"]


async def test_a_report_file_larger_than_an_answer_may_be_is_streamed_whole(
    emulator: RunningEmulator,
) -> None:
    lines = (f"{APPID},{NAME},big%2F{i:06d}.png,1,,,STANDARD,false,\n" for i in range(30_000))
    blob = gzip.compress("".join(lines).encode(), compresslevel=0)
    write_report(emulator, [blob])
    limit = 64 * 1024
    assert len(blob) > 20 * limit
    settings = ClientSettings(BUCKET, "ap-guangzhou", CREDS, endpoint=emulator.url, max_body=limit)
    async with CIClient(settings) as small:
        batches = await read_all(small)

    assert sum(len(rows) for rows in batches) == 30_000
    assert batches[-1][-1].key == "big/029999.png"


async def test_failed_reads_of_the_manifest_and_a_report_file_are_retried(
    data: Path, emulator: RunningEmulator, client: CIClient
) -> None:
    seed(emulator, data, KEYS)
    write_report(emulator, [csv_gz([row(emulator, k) for k in KEYS])])
    # Seed 40 draws 503, pass, 503, 503, pass: the manifest takes two tries, the file three.
    emulator.emulator.faults.configure(FaultConfig(error_503=0.5, routes=("GET /{key}",), seed=40))

    batches = await read_all(client)

    assert [ref.key for rows in batches for ref in rows] == KEYS
    stats = emulator.backend.stats.snapshot()
    assert stats["requests"]["GET /{key}"] == 5
    assert stats["faults"] == {"error_503": 3}


async def test_a_missing_manifest_is_a_source_error_naming_it(client: CIClient) -> None:
    with pytest.raises(
        SourceError, match=r"inventory 'nowhere/manifest.json': cannot read it: HTTP 404 NoSuchKey"
    ):
        await read_all(client, "nowhere/manifest.json")


async def test_an_outage_that_outlasts_the_retries_stays_a_ci_error(
    emulator: RunningEmulator, client: CIClient
) -> None:
    emulator.emulator.faults.configure(FaultConfig(error_503=1.0, routes=("GET /{key}",)))
    with pytest.raises(ServiceError, match="HTTP 503"):
        await read_all(client)
    assert emulator.backend.stats.snapshot()["requests"]["GET /{key}"] == FAST.attempts


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (b"not json", "not a COS inventory manifest"),
        (b'{"files": []}', "not a COS inventory manifest"),
        (b'{"fileSchema": "Appid, Bucket, Size", "files": []}', "fileSchema has no Key column"),
        (
            b'{"fileSchema": "Key", "fileFormat": "ORC", "files": []}',
            "report files are ORC; only CSV",
        ),
        (
            b'{"fileSchema": "Key", "sourceBucket": "other", "sourceAppid": "1250000000", "files": []}',
            "it lists bucket 'other-1250000000', but jobs can only process objects of the target",
        ),
    ],
)
async def test_a_manifest_that_cannot_be_used_is_a_source_error_saying_why(
    emulator: RunningEmulator, client: CIClient, manifest: bytes, message: str
) -> None:
    emulator.backend.put_object(BUCKET, MANIFEST, manifest)
    with pytest.raises(SourceError, match=message):
        await read_all(client)


async def test_a_report_file_whose_checksum_differs_from_the_manifest_is_refused(
    data: Path, emulator: RunningEmulator, client: CIClient
) -> None:
    seed(emulator, data, ["a.png"])
    write_report(emulator, [csv_gz([row(emulator, "a.png")])])
    manifest = json.loads(emulator.backend.get_object(BUCKET, MANIFEST)[1])
    emulator.backend.put_object(
        BUCKET, manifest["files"][0]["key"], csv_gz([row(emulator, "a.png")] * 2)
    )

    with pytest.raises(SourceError, match=r"has MD5 [0-9a-f]{32}, the manifest says"):
        await read_all(client)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (f'"{APPID}","{NAME}"\n', "line 1: 2 columns, fewer than fileSchema names"),
        (f'"{APPID}","{NAME}","%FF.png","1"\n', "line 1: key '%FF.png' is not URL-encoded UTF-8"),
        (f'"{APPID}","{NAME}","","1"\n', "line 1: the row has an empty key"),
        (f'"{APPID}","{NAME}","a.png","1\n', "unreadable"),
    ],
)
async def test_a_row_that_cannot_be_read_is_a_source_error_naming_the_file_and_line(
    emulator: RunningEmulator, client: CIClient, line: str, message: str
) -> None:
    write_report(emulator, [gzip.compress(line.encode())])
    with pytest.raises(SourceError, match=message):
        await read_all(client)


# -- a whole run


async def test_a_manifest_with_an_inventory_source_runs_every_current_object_to_success(
    tmp_path: Path, data: Path, emulator: RunningEmulator
) -> None:
    seed(emulator, data, [*KEYS, "skip/me.png", "gone.png"])
    emulator.backend.put_object(BUCKET, "photos/folder/", b"")
    rows = [row(emulator, key) for key in [*KEYS, "skip/me.png", "photos/folder/"]]
    write_report(emulator, [csv_gz(rows[:4]), csv_gz(rows[4:])])
    source = f'inventory = "{MANIFEST}"\nexclude = ["skip/*"]\nmin_size = 1'
    manifest = write_manifest(tmp_path, source)

    report, _ = await run_manifest(manifest, emulator)

    assert report.exit_code == 0
    assert (report.expansion.seen, report.expansion.matched) == (len(KEYS) + 1, len(KEYS))
    assert report.counts["success"] == len(KEYS)
    with Ledger.open(load_manifest(manifest).ledger_path) as ledger:
        states = {row.key: (str(row.state), row.output_key) for row in ledger.iter_items()}
    assert states == {key: ("success", f"out/{key}") for key in KEYS}
    for key in KEYS:
        assert (data / BUCKET / "out" / key).is_file()
    stats = emulator.backend.stats.snapshot()
    assert stats["jobs_created"] == len(KEYS)
    assert stats["duplicate_submissions"] == 0
