"""Shards: one manifest divided among N processes (a Kubernetes Indexed Job), each with its own
objects, its own ledger and its share of the account's quota.

The shard of an object is the first 8 bytes of SHA-256 of `bucket/key` (UTF-8), read as a
big-endian unsigned integer, modulo N. It depends on nothing but the bucket, the key and N, so
every shard, on any machine and in any picjobs version, agrees on who owns which object.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.exceptions import UsageError
from orchestrator.items import ObjectRef

if TYPE_CHECKING:
    from orchestrator.manifest import Manifest

__all__ = [
    "MAX_SHARDS",
    "Shard",
    "ShardProblem",
    "check_shard_count",
    "existing_shard_counts",
    "parse_shard",
    "shard_ledger_path",
    "shard_of",
    "shard_paths",
    "sharded",
]

MAX_SHARDS = 1024
_SPEC = re.compile(r"^\s*(-?\d+)\s*/\s*(-?\d+)\s*$")


def shard_of(bucket: str, key: str, count: int) -> int:
    """Which of `count` shards owns the object `bucket/key`."""
    digest = hashlib.sha256(f"{bucket}/{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard `index` of `count` (0 <= index < count <= MAX_SHARDS)."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def keeper(self) -> Callable[[ObjectRef], bool]:
        """A predicate for the objects this shard owns; as cheap as the hash allows, since
        every shard runs it over the whole source."""
        sha256, index, count = hashlib.sha256, self.index, self.count

        def keep(ref: ObjectRef) -> bool:
            digest = sha256(f"{ref.bucket}/{ref.key}".encode()).digest()
            return int.from_bytes(digest[:8], "big") % count == index

        return keep

    def ledger_path(self, path: Path) -> Path:
        return shard_ledger_path(path, self.index, self.count)

    def rate(self, total: float) -> float:
        return total / self.count

    def connections(self, total: int) -> int:
        return max(1, math.ceil(total / self.count))

    def queue_share(self, total: int) -> int:
        """This shard's part of the queue's free room: the shards' parts never add up to more."""
        return max(1, total // self.count)


def sharded(manifest: Manifest, shard: Shard) -> Manifest:
    """The manifest as shard K of N runs it: its own ledger, its share of the fleet's limits
    (rate/N requests per second, ceil(concurrency/N) connections) and only its objects."""
    limits = dataclasses.replace(
        manifest.limits,
        rate=shard.rate(manifest.limits.rate),
        concurrency=shard.connections(manifest.limits.concurrency),
    )
    return dataclasses.replace(
        manifest, ledger_path=shard.ledger_path(manifest.ledger_path), limits=limits, shard=shard
    )


def parse_shard(text: str) -> Shard:
    """`K/N` as given to `--shard` (Kubernetes expands `$(JOB_COMPLETION_INDEX)/8` to `3/8`)."""
    match = _SPEC.match(text)
    if match is None:
        raise UsageError(f"--shard: expected K/N such as 3/8, got {text!r}")
    index, count = int(match.group(1)), int(match.group(2))
    if not 1 <= count <= MAX_SHARDS:
        raise UsageError(f"--shard {text}: the shard count must be 1 to {MAX_SHARDS}, got {count}")
    if not 0 <= index < count:
        raise UsageError(
            f"--shard {text}: the shard index must be 0 to {count - 1} for {count} shards,"
            f" got {index}"
        )
    return Shard(index, count)


def shard_ledger_path(path: Path, index: int | str, count: int) -> Path:
    """`state/thumbs.sqlite` -> `state/thumbs.shard-3-of-8.sqlite`."""
    return path.with_name(f"{path.stem}.shard-{index}-of-{count}{path.suffix}")


def _pattern(path: Path) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(path.stem)}\.shard-(\d+)-of-(\d+){re.escape(path.suffix)}$")


def existing_shard_counts(path: Path) -> dict[int, list[Path]]:
    """The shard ledgers beside `path`, by their N."""
    pattern = _pattern(path)
    found: dict[int, list[Path]] = {}
    try:
        entries = sorted(path.parent.iterdir())
    except OSError:
        return found
    for entry in entries:
        match = pattern.match(entry.name)
        if match is not None:
            found.setdefault(int(match.group(2)), []).append(entry)
    return found


def check_shard_count(path: Path, shard: Shard) -> None:
    """Refuse shard K of N beside ledgers of another N: objects would be in two ledgers."""
    others = {n: paths for n, paths in existing_shard_counts(path).items() if n != shard.count}
    if not others:
        return
    n = max(others, key=lambda k: len(others[k]))
    pattern = path.with_name(f"{path.stem}.shard-*-of-{n}{path.suffix}")
    raise UsageError(
        f"{path}: {len(others[n])} shard ledgers of this manifest use {n} shards, not"
        f" {shard.count}; finish them with --shard K/{n}, or remove {pattern} (and its -wal,"
        f" -shm and .lock files) to start over with {shard.count}"
    )


def shard_paths(manifest: Manifest, count: int) -> list[Path]:
    return [shard_ledger_path(manifest.ledger_path, k, count) for k in range(count)]


@dataclass(frozen=True)
class ShardProblem:
    """A shard ledger that was not read, or was read while a run was writing it."""

    shard: int
    count: int
    ledger: Path
    condition: str  # "missing", "running" or "unreadable"
    detail: str = ""

    def __str__(self) -> str:
        what = {
            "missing": "no ledger (the shard has not run yet, or its ledger is elsewhere)",
            "running": f"being written by a run ({self.detail}); its counts are changing",
            "unreadable": f"not read: {self.detail}",
        }[self.condition]
        return f"shard {self.shard} of {self.count}: {self.ledger}: {what}"
