"""Runs against an emulator whose temporary credentials rotate every few seconds, or whose clock
is twenty minutes off: every job succeeds and no request is refused for expired credentials.

The emulator issues credentials valid for LIFETIME seconds (benchmarks/credentials.py measures
the 30 s case in real time); the client refreshes them from the emulator's metadata service or
its fake STS. Client and emulator share a clock that moves a millisecond each time it is read,
so a run's timeline depends on the requests it makes, not on how busy the machine is.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from orchestrator.cloud.client import CIClient, ClientSettings
from orchestrator.cloud.credentials import CredentialProvider, resolve_credentials
from orchestrator.cloud.pacing import AdaptiveRateLimiter
from orchestrator.emulator.metadata import METADATA_PREFIX
from orchestrator.emulator.server import EmulatorConfig, RunningEmulator, running_emulator
from orchestrator.engine.runner import run
from orchestrator.ledger import Ledger
from orchestrator.manifest import load_manifest
from tests.engine.support import BUCKET, CREDS, OPTIONS, seed, write_manifest

LIFETIME = 2.0
JOBS = 2000
CONCURRENCY = 16


class TickingClock:
    """Starts at the real time and moves `step` seconds each time it is read."""

    def __init__(self, step: float = 0.001) -> None:
        self.now = time.time()
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


_AUTH_REFUSALS = ("AccessDenied", "ExpiredToken", "InvalidAccessKeyId", "SecretidNotExist")
_SKEW_REFUSALS = ("RequestTimeTooSkewed", "SignatureExpired", "AccessDenied")


async def _stats(emu: RunningEmulator) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(f"{emu.url}/_emulator/stats") as r:
        result: dict[str, Any] = await r.json()
        return result


async def _run(
    emu: RunningEmulator,
    folder: Path,
    provider: CredentialProvider,
    clock: TickingClock | None = None,
) -> dict[str, int]:
    manifest = load_manifest(write_manifest(folder, 'prefix = "img/"'))
    settings = ClientSettings(
        BUCKET,
        "ap-guangzhou",
        provider.current.credentials,
        endpoint=emu.url,
        concurrency=CONCURRENCY,
        clock=clock or time.time,
    )
    with Ledger.open(manifest.ledger_path) as ledger:
        async with CIClient(
            settings, limiter=AdaptiveRateLimiter(5000), credentials=provider
        ) as client:
            report = await run(manifest, ledger, client, OPTIONS)
    return report.counts


def _emulator(data: Path, **config: Any) -> Any:
    settings = EmulatorConfig(data_dir=data, default_bucket=BUCKET, rate=None, **config)
    return running_emulator(settings)


def _share(emu: RunningEmulator, clock: TickingClock) -> None:
    emu.emulator.clock.real = clock


# A shorter run moves the clock further per read, to see as many rotations.
@pytest.mark.parametrize(
    ("source", "jobs", "step"), [("cvm-role", JOBS, 0.001), ("tke-oidc", 400, 0.004)]
)
async def test_a_long_run_outlives_many_credentials_without_one_refused_request(
    tmp_path: Path, data: Path, source: str, jobs: int, step: float
) -> None:
    token = tmp_path / "token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.service-account-token")
    async with _emulator(data, temporary_credentials=LIFETIME) as emu:
        seed(emu, data, (f"img/{i:05d}.png" for i in range(jobs)))
        environ = {
            "PICJOBS_METADATA_ENDPOINT": emu.url + METADATA_PREFIX,
            "PICJOBS_STS_ENDPOINT": emu.url,
            "TKE_REGION": "ap-guangzhou",
            "TKE_PROVIDER_ID": "tke-cluster",
            "TKE_WEB_IDENTITY_TOKEN_FILE": str(token),
            "TKE_ROLE_ARN": "qcs::cam::uin/100000000001:roleName/picjobs",
        }
        clock = TickingClock(step)
        _share(emu, clock)
        provider = await resolve_credentials(source, environ=environ, clock=clock)
        counts = await _run(emu, tmp_path, provider, clock)
        stats = await _stats(emu)
    assert counts["success"] == jobs, (counts, stats["errors"], stats["credentials"])
    assert sum(stats["errors"].get(code, 0) for code in _AUTH_REFUSALS) == 0
    issued = stats["credentials"]["issued"]
    assert provider.refreshes >= 2
    assert issued >= 3
    fetches = stats["credentials"].get("metadata_role", 0) + stats["credentials"].get(
        "metadata_credentials", 0
    )
    assert fetches <= 2 * issued
    if source == "cvm-role":
        assert stats["credentials"]["metadata_credentials"] >= issued - 1


@pytest.mark.parametrize("skew", [1200.0, -1200.0])
async def test_a_host_clock_twenty_minutes_off_is_corrected_after_at_most_one_refusal_per_connection(
    tmp_path: Path, data: Path, skew: float
) -> None:
    async with _emulator(data, credentials=CREDS, clock_skew=skew) as emu:
        seed(emu, data, (f"img/{i:05d}.png" for i in range(500)))
        counts = await _run(emu, tmp_path, CredentialProvider.static(CREDS))
        stats = await _stats(emu)
    assert counts["success"] == 500
    refused = sum(stats["errors"].get(code, 0) for code in _SKEW_REFUSALS)
    assert 1 <= refused <= CONCURRENCY


async def test_rotating_credentials_and_a_skewed_clock_together(tmp_path: Path, data: Path) -> None:
    # The corrected clock is only as exact as the Date header's whole seconds: credentials must
    # outlive that by their margin (a tenth of their life), so here they live 30 s.
    async with _emulator(data, temporary_credentials=30.0, clock_skew=1200.0) as emu:
        seed(emu, data, (f"img/{i:05d}.png" for i in range(500)))
        environ = {"PICJOBS_METADATA_ENDPOINT": emu.url + METADATA_PREFIX}
        clock = TickingClock(0.03)
        _share(emu, clock)
        provider = await resolve_credentials("cvm-role", environ=environ, clock=clock)
        counts = await _run(emu, tmp_path, provider, clock)
        stats = await _stats(emu)
    assert counts["success"] == 500
    assert stats["credentials"].get("expired_refusals", 0) == 0
    assert provider.refreshes >= 2
