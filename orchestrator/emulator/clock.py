"""The emulator's idea of "now" for signatures and `Date` headers: real time shifted by
`--clock-skew`, so that a client's clock looks that far off and must correct itself."""

from __future__ import annotations

import time
from collections.abc import Callable
from email.utils import formatdate

__all__ = ["SkewedClock"]


class SkewedClock:
    def __init__(self, skew: float = 0.0, real: Callable[[], float] = time.time) -> None:
        self.skew = skew
        self.real = real

    def now(self) -> float:
        return self.real() + self.skew

    def http_date(self) -> str:
        return formatdate(self.now(), usegmt=True)
