"""Defaults written once: every layer that has a setting without a manifest agrees with it."""

from __future__ import annotations

import ast
import asyncio
import inspect
from pathlib import Path
from types import ModuleType

import pytest

from orchestrator import defaults, textfile
from orchestrator.cli._common import EMBEDDED
from orchestrator.cloud.client import ClientSettings
from orchestrator.cloud.pacing import AdaptiveRateLimiter
from orchestrator.cloud.retry import RETRY_AFTER_MAX, RetryPolicy
from orchestrator.cloud.signing import Credentials
from orchestrator.engine.runner import RunOptions
from orchestrator.engine.submitter import Submitter
from orchestrator.engine.tracker import Tracker
from orchestrator.manifest import EMBEDDED_ENDPOINT, Limits


def test_a_manifest_without_limits_paces_and_retries_as_the_client_does() -> None:
    limits = Limits()
    settings = ClientSettings("b-1250000000", "ap-guangzhou", Credentials("id", "key"))
    assert (limits.rate, limits.concurrency) == (defaults.RATE, defaults.CONCURRENCY)
    assert settings.concurrency == limits.concurrency
    assert RetryPolicy().attempts == limits.max_attempts == defaults.MAX_ATTEMPTS


def test_the_engine_polls_within_the_same_bounds_whoever_builds_it() -> None:
    options = RunOptions()
    tracker = inspect.signature(Tracker).parameters
    assert (options.poll_min, options.poll_max) == (defaults.POLL_MIN, defaults.POLL_MAX)
    assert (tracker["poll_min"].default, tracker["poll_max"].default) == (
        options.poll_min,
        options.poll_max,
    )
    assert inspect.signature(Submitter).parameters["concurrency"].default == Limits().concurrency


def test_the_cli_and_the_manifest_name_the_embedded_endpoint_alike() -> None:
    assert EMBEDDED == EMBEDDED_ENDPOINT == "embedded"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_rate_limiter_honours_retry_after_up_to_the_retry_policys_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.now += seconds

    monkeypatch.setattr(asyncio, "sleep", sleep)
    limiter = AdaptiveRateLimiter(1, clock=clock, sleep=sleep)
    limiter.on_throttle(3600.0)  # an hour
    await limiter.acquire()
    assert waits[0] == RETRY_AFTER_MAX == RetryPolicy().retry_after_max


@pytest.mark.parametrize("module", [defaults, textfile])
def test_the_shared_modules_import_nothing_of_the_project(module: ModuleType) -> None:
    """So that every layer, the sources and the client included, may import them."""
    tree = ast.parse(Path(str(module.__file__)).read_text(encoding="utf-8"))
    imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ]
    assert not [name for name in imported if name.split(".")[0] == "orchestrator"]
