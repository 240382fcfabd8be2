"""Items, a controllable clock and history readers for the ledger tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from orchestrator.items import Item
from orchestrator.ledger import ClaimedItem, Ledger

T0 = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)


class Clock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def item(n: int, level: int = 0, output: str | None = None) -> Item:
    return Item(
        item_id=f"id-{n:06d}",
        bucket="src-1250000000",
        key=f"in/{n:06d}.jpg",
        output_bucket="dst-1250000000",
        output_region="ap-guangzhou",
        output_key=output or f"out/{n:06d}.webp",
        job_level=level,
        size=n,
    )


def items(count: int, start: int = 0) -> Iterator[Item]:
    return (item(n) for n in range(start, start + count))


def state_of(ledger: Ledger, item_id: str) -> str:
    row = ledger.connection.execute("SELECT state FROM items WHERE item_id = ?", (item_id,))
    return str(row.fetchone()[0])


def history(ledger: Ledger, item_id: str) -> list[tuple[int, str | None, str, str | None]]:
    rows = ledger.connection.execute(
        "SELECT attempt, job_id, outcome, code FROM attempts_log WHERE item_id = ? ORDER BY rowid",
        (item_id,),
    )
    return [tuple(row) for row in rows]


def submit(ledger: Ledger, count: int) -> list[ClaimedItem]:
    claimed = ledger.claim(count)
    ledger.mark_submitted([(c.item_id, f"job-{c.item_id}") for c in claimed])
    return claimed
