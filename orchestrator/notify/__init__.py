"""Notifications and heartbeat pings for nightly runs (`[notify]` in the manifest)."""

from orchestrator.notify.deliver import BUDGET_SECONDS, Delivery, Notifier
from orchestrator.notify.message import FailureGroup, Outcome, compose, event_of

__all__ = [
    "BUDGET_SECONDS",
    "Delivery",
    "FailureGroup",
    "Notifier",
    "Outcome",
    "compose",
    "event_of",
]
