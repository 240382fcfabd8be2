"""`[notify]`: who hears about a night's run, and when. The URLs hold secrets: never show them."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_EVENTS",
    "NotifyConfig",
    "NotifyEvent",
    "heartbeat_problem",
    "notify_url_problem",
    "url_scheme",
]


class NotifyEvent(enum.StrEnum):
    """What a run's exit code means to a person; `[notify] on` lists the ones to hear about."""

    SUCCESS = "success"
    FAILED = "failed"
    TRIPPED = "tripped"
    INCOMPLETE = "incomplete"


DEFAULT_EVENTS: Final = frozenset({NotifyEvent.FAILED, NotifyEvent.TRIPPED, NotifyEvent.INCOMPLETE})


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    urls: tuple[str, ...] = ()
    on: frozenset[NotifyEvent] = field(default_factory=lambda: DEFAULT_EVENTS)
    heartbeat: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.urls or self.heartbeat)

    def __repr__(self) -> str:  # the URLs carry robot keys and tokens
        return f"NotifyConfig(urls=<{len(self.urls)} hidden>, on={sorted(self.on)}, heartbeat=" + (
            "<hidden>)" if self.heartbeat else "None)"
        )


def url_scheme(url: str) -> str:
    """The part of a notification URL that is safe to show."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    return scheme if scheme.isascii() and scheme.replace("+", "").isalnum() else "?"


def notify_url_problem(url: str) -> str | None:
    """Why Apprise cannot use `url`, in words that do not repeat the URL (it holds secrets)."""
    if "://" not in url:
        return "is not a notification URL (expected scheme://..., e.g. wecombot://KEY)"
    import apprise  # only manifests with [notify] pay for its import

    if apprise.Apprise.instantiate(url) is None:
        return f"is not a notification URL Apprise accepts (scheme {url_scheme(url)!r})"
    return None


def heartbeat_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http(s) URL such as https://hc-ping.com/<uuid>"
    return None
