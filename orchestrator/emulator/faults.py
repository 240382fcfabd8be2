"""Fault injection: which requests get a wrong answer, decided by a seeded RNG.

Each request on a covered route draws once for its outcome. Fractions are probabilities, and
the outcomes exclude each other (their sum must not exceed 1):

* `error_500`, `error_503`, `error_429`: answered with that error before anything happens;
* `reset_before`: the connection is dropped before the request takes effect;
* `reset_after`: the request takes effect (a job is created), then the connection is dropped,
  so the client never sees the answer;
* `lost`: the request takes effect, and no answer ever comes: the connection stays open and
  silent until the client gives up (or `lost_seconds` pass), then it is dropped. The client
  waits out its read timeout, as it does when an answer is lost on the way back;
* `malformed`: the request takes effect and a 200 comes back with a truncated body.

Latency is drawn separately, and a request gets at most one of its two kinds:

* `latency`: that fraction of requests is held `latency_seconds` before anything happens. A
  request whose client hangs up during the hold (a client timeout shorter than the hold) is
  dropped unhandled, as a server does with a request it has not started on: no job is created;
* `latency_after`: that fraction of requests takes effect at once and its answer is held
  `latency_seconds`, so a client that gives up first has lost the answer to a request that
  did create its job.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, NamedTuple

__all__ = ["Draw", "Fault", "FaultConfig", "FaultInjector"]


class Fault(enum.Enum):
    NONE = "none"
    ERROR_500 = "error_500"
    ERROR_503 = "error_503"
    ERROR_429 = "error_429"
    RESET_BEFORE = "reset_before"
    RESET_AFTER = "reset_after"
    LOST = "lost"
    MALFORMED = "malformed"


_OUTCOMES = (
    Fault.ERROR_500,
    Fault.ERROR_503,
    Fault.ERROR_429,
    Fault.RESET_BEFORE,
    Fault.RESET_AFTER,
    Fault.LOST,
    Fault.MALFORMED,
)


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """What to inject where. `routes` holds "ci", "cos", "all" or route names ("POST /pic_jobs")."""

    error_500: float = 0.0
    error_503: float = 0.0
    error_429: float = 0.0
    reset_before: float = 0.0
    reset_after: float = 0.0
    lost: float = 0.0
    malformed: float = 0.0
    latency: float = 0.0
    latency_after: float = 0.0
    latency_seconds: float = 0.0
    lost_seconds: float = 300.0
    routes: tuple[str, ...] = ("ci",)
    seed: int | None = None

    def __post_init__(self) -> None:
        for outcome in (*_OUTCOMES, "latency", "latency_after"):
            name = outcome if isinstance(outcome, str) else outcome.value
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a fraction between 0 and 1")
        if sum(getattr(self, outcome.value) for outcome in _OUTCOMES) > 1.0 + 1e-9:
            raise ValueError("the fault fractions add up to more than 1")
        if self.latency + self.latency_after > 1.0 + 1e-9:
            raise ValueError("latency and latency_after add up to more than 1")
        if self.latency_seconds < 0 or self.lost_seconds < 0:
            raise ValueError("latency_seconds and lost_seconds must be >= 0")

    def fraction(self, fault: Fault) -> float:
        value: float = getattr(self, fault.value)
        return value

    def covers(self, route: str, *, ci: bool) -> bool:
        return (
            "all" in self.routes or route in self.routes or ("ci" if ci else "cos") in self.routes
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["routes"] = list(self.routes)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaultConfig:
        """From a JSON object; missing fields take their defaults, unknown ones are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name == "routes":
                if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                    raise ValueError("routes must be a list of strings")
                values[name] = tuple(value)
            elif name == "seed":
                if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                    raise ValueError("seed must be an integer or null")
                values[name] = value
            else:
                if not isinstance(value, int | float) or isinstance(value, bool):
                    raise ValueError(f"{name} must be a number")
                values[name] = float(value)
        return cls(**values)


class Draw(NamedTuple):
    """The fate of one request: its outcome, and how long to hold it before and after it
    takes effect (seconds, at most one of the two non-zero)."""

    fault: Fault
    delay: float = 0.0
    hold: float = 0.0


_UNHARMED = Draw(Fault.NONE)


class FaultInjector:
    """Draws the fault for each request from a configuration and its own RNG."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        # Nothing to inject: no draws (the next configure reseeds the RNG anyway).
        self._quiet = not (
            config.latency
            or config.latency_after
            or any(config.fraction(outcome) for outcome in _OUTCOMES)
        )

    def draw(self, route: str, *, ci: bool) -> Draw:
        """The outcome for one request and the latency to add before or after it."""
        config = self.config
        if self._quiet or not config.covers(route, ci=ci):
            return _UNHARMED
        delay = hold = 0.0
        if config.latency or config.latency_after:
            roll = self._rng.random()
            if roll < config.latency:
                delay = config.latency_seconds
            elif roll < config.latency + config.latency_after:
                hold = config.latency_seconds
        roll = self._rng.random()
        for outcome in _OUTCOMES:
            share = config.fraction(outcome)
            if roll < share:
                return Draw(outcome, delay, hold)
            roll -= share
        return Draw(Fault.NONE, delay, hold)
