"""The Notifier against a real receiver on loopback."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from orchestrator.manifest.notify import NotifyConfig, NotifyEvent
from orchestrator.notify import FailureGroup, Notifier, Outcome
from tests.notify.receiver import receiver

SECRET = "s3cr3t-robot-key"


@pytest.fixture(autouse=True)
def _propagating_logs(monkeypatch: pytest.MonkeyPatch) -> None:
    # A CLI test run before these in the same process leaves the package logger unpropagated.
    monkeypatch.setattr(logging.getLogger("orchestrator"), "propagate", True)


def _outcome(exit_code: int, **kw: object) -> Outcome:
    base: dict[str, object] = {
        "manifest_name": "thumbs",
        "manifest_path": Path("/etc/picjobs/thumbs.toml"),
        "exit_code": exit_code,
        "counts": {"success": 90, "failed": 10},
        "failures": (FailureGroup("InvalidArgument", 7, "photos/a.jpg"),),
        "seconds": 61.0,
        "submitted": 100,
    }
    base.update(kw)
    return Outcome(**base)  # type: ignore[arg-type]


def test_a_failed_run_sends_one_json_message_with_counts_and_codes() -> None:
    with receiver() as hook:
        notifier = Notifier(NotifyConfig(urls=(hook.url(f"/hooks/{SECRET}", "json"),)))
        results = notifier.finished(_outcome(1))
    assert [r.ok for r in results] == [True]
    assert len(hook.requests) == 1
    payload = hook.requests[0].json()
    assert "failed 10" in payload["message"]
    assert "InvalidArgument x7, e.g. photos/a.jpg" in payload["message"]
    assert "--failed-only" in payload["message"]


def test_a_successful_run_sends_nothing_by_default_and_one_message_with_success() -> None:
    with receiver() as hook:
        url = hook.url("/hooks/x", "json")
        Notifier(NotifyConfig(urls=(url,))).finished(_outcome(0, counts={"success": 100}))
        assert hook.requests == []
        wanted = frozenset({NotifyEvent.SUCCESS})
        Notifier(NotifyConfig(urls=(url,), on=wanted)).finished(_outcome(0))
        assert len(hook.requests) == 1


def test_the_heartbeat_gets_start_then_the_exit_code() -> None:
    with receiver() as hc:
        notifier = Notifier(NotifyConfig(heartbeat=hc.url(f"/ping/{SECRET}")))
        notifier.started()
        notifier.finished(_outcome(4))
        assert hc.paths() == [f"/ping/{SECRET}/start", f"/ping/{SECRET}/4"]


def test_the_heartbeat_gets_the_bare_url_on_success() -> None:
    with receiver() as hc:
        notifier = Notifier(NotifyConfig(heartbeat=hc.url("/ping/abc/")))
        notifier.started()
        notifier.finished(_outcome(0))
        assert hc.paths() == ["/ping/abc/start", "/ping/abc"]


def test_a_hanging_receiver_costs_at_most_the_budget_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with receiver(hang=True) as hook:
        config = NotifyConfig(urls=(hook.url(f"/{SECRET}", "json"),), heartbeat=hook.url("/hb"))
        began = time.monotonic()
        results = Notifier(config, budget=1.0).finished(_outcome(1))
        elapsed = time.monotonic() - began
    assert elapsed < 3.0
    assert {r.ok for r in results} == {False}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == len(results) == 2
    assert all("did not answer in time" in r.getMessage() for r in warnings)


def test_a_refusing_receiver_is_reported_without_its_url(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with receiver(status=500) as hook:
        config = NotifyConfig(
            urls=(hook.url(f"/{SECRET}", "json"),), heartbeat=hook.url(f"/{SECRET}")
        )
        results = Notifier(config).finished(_outcome(1))
    assert [r.ok for r in results] == [False, False]
    assert [r.reason for r in results] == [
        "HTTP 500",
        "the service refused it or could not be reached",
    ]
    assert SECRET not in caplog.text
    assert "notification 1 (json)" in caplog.text


def test_an_unreachable_target_fails_fast() -> None:
    with receiver() as hook:
        port = hook.port
    config = NotifyConfig(urls=(f"json://127.0.0.1:{port}/{SECRET}",))
    results = Notifier(config).finished(_outcome(1))
    assert [r.ok for r in results] == [False]


def test_the_test_message_reaches_every_target_and_pings_no_heartbeat() -> None:
    with receiver() as hook:
        config = NotifyConfig(
            urls=(hook.url("/a", "json"), hook.url("/b", "json")), heartbeat=hook.url("/hb")
        )
        results = Notifier(config).test("thumbs")
        assert sorted(hook.paths()) == ["/a", "/b"]
    assert [r.target for r in results] == ["notification 1 (json)", "notification 2 (json)"]
    assert all(r.ok for r in results)


def test_the_config_never_shows_its_urls() -> None:
    config = NotifyConfig(urls=(f"wecombot://{SECRET}",), heartbeat=f"https://hc-ping.com/{SECRET}")
    assert SECRET not in repr(config)
    assert SECRET not in str(config)
