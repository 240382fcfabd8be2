"""The ledger's record of runs (one row each, from start to finish) and its meta values."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.ledger.errors import guarded
from orchestrator.ledger.schema import encode_json
from orchestrator.ledger.store import Store

__all__ = ["Run", "Runs"]


@dataclass(frozen=True, slots=True)
class Run:
    run_id: int
    started_at: str
    finished_at: str | None
    pid: int
    host: str
    args: dict[str, Any]
    exit_code: int | None
    counts: dict[str, int] | None


class Runs(Store):
    """The runs and meta part of a Ledger."""

    @guarded("write ledger")
    def start_run(self, pid: int, host: str, args: Mapping[str, Any]) -> int:
        cursor = self._write(
            "INSERT INTO runs (started_at, pid, host, args) VALUES (?, ?, ?, ?)",
            (self._now(), pid, host, encode_json(args)),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    @guarded("write ledger")
    def finish_run(self, run_id: int, exit_code: int, counts: Mapping[str, int]) -> None:
        self._write(
            "UPDATE runs SET finished_at = ?, exit_code = ?, counts = ? WHERE run_id = ?",
            (self._now(), exit_code, encode_json(counts), run_id),
        )

    @guarded("read ledger")
    def last_run(self) -> Run | None:
        row = self._conn.execute(
            "SELECT run_id, started_at, finished_at, pid, host, args, exit_code, counts "
            "FROM runs ORDER BY run_id DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        run_id, started_at, finished_at, pid, host, args, exit_code, counts = row
        return Run(
            run_id, started_at, finished_at, pid, host, json.loads(args), exit_code,
            None if counts is None else json.loads(counts),
        )  # fmt: skip

    @guarded("read ledger")
    def meta_get(self, key: str) -> str | None:
        value = self._scalar("SELECT value FROM meta WHERE key = ?", (key,))
        return None if value is None else str(value)

    @guarded("write ledger")
    def meta_set(self, key: str, value: str) -> None:
        self._write(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
