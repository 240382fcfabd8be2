"""Scenario 12: the emulator lists a large bucket folder it did not write, and sees changes to it.

The folder is one flat folder of `Sizes.folder_objects` files made beside the benchmark bucket
(the worst case for the emulator: a change there makes it read the whole folder again). Pages of
1,000 keys are asked for over HTTP from the benchmark's emulator process, signed, on one kept-open
connection: the figure includes the client's own share of a request.
"""

from __future__ import annotations

import http.client
import os
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from benchmarks.harness import REGION, SECRET_ID, SECRET_KEY
from benchmarks.report import Figure, at_most, info
from orchestrator.cloud.signing import Credentials, authorization

if TYPE_CHECKING:
    from benchmarks.scenarios import Bench

__all__ = ["folder_listing"]

LISTING_BUCKET = "listing-1250000000"
PAGE = 1000
_CREDS = Credentials(SECRET_ID, SECRET_KEY)
_HOST = f"{LISTING_BUCKET}.cos.{REGION}.myqcloud.com"


def _make_folder(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    original = folder.parent / "listing-original.bin"
    original.write_bytes(b"x" * 100)
    for i in range(count):
        path = folder / f"{i:07d}.bin"
        if not path.exists():
            try:
                os.link(original, path)
            except OSError:
                path.write_bytes(original.read_bytes())


class _Lister:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port, timeout=60
        )

    def page(self, marker: str) -> tuple[float, int]:
        """One signed listing page after `marker`: its seconds and its key count."""
        params = {"prefix": "flat/", "marker": marker, "max-keys": str(PAGE)}
        headers = {"Host": _HOST}
        now = int(time.time())
        headers["Authorization"] = authorization(
            "GET", "/", params, headers, _CREDS, now - 60, now + 600
        )
        query = "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())
        started = time.perf_counter()
        self.conn.request("GET", f"/?{query}", headers=headers)
        answer = self.conn.getresponse()
        body = answer.read()
        seconds = time.perf_counter() - started
        if answer.status != 200:
            raise RuntimeError(f"listing answered {answer.status}: {body[:300]!r}")
        return seconds, body.count(b"<Key>")

    def head(self, key: str) -> int:
        headers = {"Host": _HOST}
        now = int(time.time())
        headers["Authorization"] = authorization(
            "HEAD", f"/{key}", {}, headers, _CREDS, now - 60, now + 600
        )
        self.conn.request("HEAD", f"/{quote(key)}", headers=headers)
        answer = self.conn.getresponse()
        answer.read()
        return answer.status

    def close(self) -> None:
        self.conn.close()


def folder_listing(bench: Bench) -> list[Figure]:
    count = bench.sizes.folder_objects
    folder = bench.data / LISTING_BUCKET / "flat"
    bench.progress(f"12: {count:,} files in one folder beside the bucket")
    _make_folder(folder, count)
    # A folder changed just before it is read is read again at the next check; let it settle.
    time.sleep(0.2)
    markers = ["", *(f"flat/{i:07d}.bin" for i in range(PAGE - 1, count - 1, PAGE))][:50]
    lister = _Lister(bench.emulator.url)
    try:
        started = time.perf_counter()
        lister.page("")  # the emulator indexes the folder when the bucket is first used
        first = time.perf_counter() - started
        cold = [lister.page(marker)[0] for marker in markers]  # ETags computed once per file
        warm = [lister.page(marker)[0] for marker in markers]
        keys = sum(lister.page(marker)[1] for marker in markers[:3])
        (folder / "zz-added-by-hand.bin").write_bytes(b"new")
        added, _ = lister.page(markers[-1])
        head = lister.head("flat/zz-added-by-hand.bin")
        seen = lister.page(f"flat/{count - 1:07d}.bin")[1]
    finally:
        lister.close()
        (folder / "zz-added-by-hand.bin").unlink(missing_ok=True)
    name = f"12 emulator folder, {count:,} objects"
    checks = f"{len(warm)} pages of {PAGE} keys" + (
        "" if keys == min(3 * PAGE, count) else f"; only {keys} keys in 3 pages"
    )
    if head != 200 or seen != 1:
        bench.errors.append(f"scenario 12: a file added by hand: HEAD {head}, listed {seen}")
    return [
        at_most(
            name,
            "listing page, median",
            statistics.median(warm) * 1000,
            50,
            "ms",
            _join(checks, f"max {max(warm) * 1000:.1f} ms"),
        ),
        info(
            name,
            "listing page, first time each page",
            statistics.median(cold) * 1000,
            "ms",
            f"median; max {max(cold) * 1000:.1f} ms (computes the ETags of its files)",
        ),
        info(
            name,
            "first listing (indexes the folder)",
            first * 1000,
            "ms",
            "once, when the bucket is first used",
        ),
        info(
            name,
            "page after a file was added by hand",
            added * 1000,
            "ms",
            "reads the changed folder again; the new file is listed"
            if seen == 1
            else "the new file was NOT listed",
        ),
    ]


def _join(*notes: str) -> str:
    return "; ".join(note for note in notes if note)
