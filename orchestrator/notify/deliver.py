"""Delivery of messages and heartbeat pings, bounded in time and silent about its URLs.

Apprise and urllib block, so each delivery runs in a daemon thread that the run waits for up to
a shared budget: a receiver that hangs costs at most the budget, never the exit code, and a
thread still stuck at exit does not keep the process alive.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from orchestrator.manifest.notify import NotifyConfig, url_scheme
from orchestrator.notify.message import Outcome, compose, event_of

__all__ = ["BUDGET_SECONDS", "Delivery", "Notifier"]

log = logging.getLogger(__name__)

BUDGET_SECONDS: Final = 10.0
_PING_TIMEOUT: Final = 5.0


@dataclass(frozen=True, slots=True)
class Delivery:
    target: str  # "notification 2 (wecombot)" or "heartbeat": never the URL
    ok: bool
    reason: str = ""


class _Attempt:
    def __init__(self, target: str, send: Callable[[], None]) -> None:
        self.target = target
        self.error: str | None = "did not answer in time"
        self._send = send
        self.thread = threading.Thread(target=self._run, name=f"picjobs {target}", daemon=True)

    def _run(self) -> None:
        try:
            self._send()
        except Exception as exc:  # a delivery's failure is reported, never raised
            self.error = _reason(exc)
        else:
            self.error = None

    def result(self) -> Delivery:
        if self.thread.is_alive():
            return Delivery(self.target, False, "did not answer in time")
        return Delivery(self.target, self.error is None, self.error or "")


class Notifier:
    """Tells the configured people and heartbeat how a run went."""

    def __init__(self, config: NotifyConfig, *, budget: float = BUDGET_SECONDS) -> None:
        self.config = config
        self.budget = budget
        self._start: _Attempt | None = None
        _silence_url_loggers()

    def started(self) -> None:
        """The heartbeat's `/start` ping, sent in the background."""
        url = self.config.heartbeat
        if url is not None:
            self._start = _Attempt("heartbeat", lambda: _ping(url.rstrip("/") + "/start"))
            self._start.thread.start()

    def finished(self, outcome: Outcome) -> list[Delivery]:
        """The heartbeat's exit ping, and the message if the outcome's event is wanted."""
        deadline = time.monotonic() + self.budget
        if self._start is not None:
            # The start ping must reach the heartbeat before the end one.
            self._start.thread.join(max(0.0, min(2.0, deadline - time.monotonic())))
            started = self._start.result()
            if not started.ok:
                log.warning("%s start was not delivered: %s", started.target, started.reason)
        attempts: list[_Attempt] = []
        url = self.config.heartbeat
        if url is not None:
            code = outcome.exit_code
            end = url.rstrip("/") + ("" if code == 0 else f"/{code}")
            attempts.append(_Attempt("heartbeat", lambda: _ping(end)))
        if self.config.urls and event_of(outcome.exit_code) in self.config.on:
            title, body = compose(outcome)
            attempts.extend(self._messages(title, body, failure=outcome.exit_code != 0))
        return self._wait(attempts, deadline)

    def test(self, manifest_name: str) -> list[Delivery]:
        """A test message to every target (and no heartbeat ping: that would record a run)."""
        body = f"picjobs {manifest_name}: a test message from `picjobs check --notify`."
        attempts = self._messages(f"picjobs {manifest_name}: test", body, failure=False)
        return self._wait(attempts, time.monotonic() + self.budget)

    def _messages(self, title: str, body: str, *, failure: bool) -> list[_Attempt]:
        return [
            _Attempt(
                f"notification {n} ({url_scheme(url)})",
                functools.partial(_apprise_send, url, title, body, failure),
            )
            for n, url in enumerate(self.config.urls, 1)
        ]

    def _wait(self, attempts: list[_Attempt], deadline: float) -> list[Delivery]:
        for attempt in attempts:
            attempt.thread.start()
        for attempt in attempts:
            attempt.thread.join(max(0.0, deadline - time.monotonic()))
        results = [attempt.result() for attempt in attempts]
        for result in results:
            if not result.ok:
                log.warning("%s was not delivered: %s", result.target, result.reason)
        return results


def _silence_url_loggers() -> None:
    """Apprise and the urllib3 under it log the URLs they call, and those URLs hold secrets."""
    for name in ("apprise", "urllib3"):
        logger = logging.getLogger(name)
        logger.propagate = False
        if not logger.handlers:
            logger.addHandler(logging.NullHandler())


def _apprise_send(url: str, title: str, body: str, failure: bool) -> None:
    import apprise

    notifier = apprise.Apprise()
    if not notifier.add(url):
        raise _Refused("Apprise does not accept this URL")
    kind = apprise.NotifyType.FAILURE if failure else apprise.NotifyType.INFO
    if not notifier.notify(body=body, title=title, notify_type=kind):
        raise _Refused("the service refused it or could not be reached")


def _ping(url: str) -> None:
    request = urllib.request.Request(url, method="GET", headers={"User-Agent": "picjobs"})
    with urllib.request.urlopen(request, timeout=_PING_TIMEOUT) as answer:
        answer.read(1024)


class _Refused(Exception):
    pass


def _reason(exc: Exception) -> str:
    """Why a delivery failed, without anything from its URL."""
    if isinstance(exc, _Refused):
        return str(exc)
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        return type(reason).__name__ if not isinstance(reason, str) else "unreachable"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return type(exc).__name__
