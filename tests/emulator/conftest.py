"""Fixtures: a seeded bucket folder, a running emulator, and a client that signs like an SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from orchestrator.emulator.server import EmulatorConfig, RunningEmulator, running_emulator
from tests.emulator.support import BUCKET, CREDS, Client, image_bytes


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / BUCKET / "photos").mkdir(parents=True)
    (root / BUCKET / "photos" / "cat.jpg").write_bytes(image_bytes())
    (root / BUCKET / "photos" / "dog.png").write_bytes(image_bytes("PNG", (30, 50)))
    return root


@pytest.fixture
def config(data_dir: Path) -> EmulatorConfig:
    return EmulatorConfig(data_dir=data_dir, credentials=CREDS, rate=None)


@pytest.fixture
async def emu(config: EmulatorConfig) -> AsyncIterator[RunningEmulator]:
    async with running_emulator(config) as running:
        yield running


@pytest.fixture
async def client(emu: RunningEmulator) -> AsyncIterator[Client]:
    # A fresh connection per request: a dropped connection must not be retried by the pool.
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield Client(session, emu, CREDS)
