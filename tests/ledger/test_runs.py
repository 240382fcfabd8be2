"""Run rows and meta values."""

from __future__ import annotations

from orchestrator.ledger import Ledger
from tests.ledger.support import Clock


def test_a_run_is_recorded_from_start_to_finish(ledger: Ledger, clock: Clock) -> None:
    assert ledger.last_run() is None
    run_id = ledger.start_run(4242, "host-a", {"manifest": "demo.toml", "wait": True})
    clock.advance(90)
    ledger.finish_run(run_id, 1, {"success": 9, "failed": 1})
    run = ledger.last_run()
    assert run is not None
    assert (run.run_id, run.pid, run.host, run.exit_code) == (run_id, 4242, "host-a", 1)
    assert run.args == {"manifest": "demo.toml", "wait": True}
    assert run.counts == {"success": 9, "failed": 1}
    assert (run.started_at, run.finished_at) == (
        "2024-05-01T10:00:00.000Z",
        "2024-05-01T10:01:30.000Z",
    )
    assert ledger.start_run(4243, "host-b", {}) == run_id + 1


def test_meta_values_are_stored_and_replaced(ledger: Ledger) -> None:
    assert ledger.meta_get("manifest") is None
    ledger.meta_set("manifest", "a")
    ledger.meta_set("manifest", "b")
    assert ledger.meta_get("manifest") == "b"
