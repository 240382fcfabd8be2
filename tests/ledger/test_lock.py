"""The run lock: one run per ledger, and who holds it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.exceptions import LockHeld
from orchestrator.ledger import Ledger


def test_a_second_run_cannot_take_the_lock(path: Path) -> None:
    with Ledger.open(path) as first, Ledger.open(path) as second:
        first.lock()
        with pytest.raises(LockHeld, match=f"pid {os.getpid()}"):
            second.lock()
    with Ledger.open(path) as third:
        third.lock()
