"""Engine tests run the real engine against the emulator over loopback HTTP, on real SQLite files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orchestrator.emulator.server import EmulatorConfig, RunningEmulator, running_emulator
from tests.engine.support import BUCKET, CREDS


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
