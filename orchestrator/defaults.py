"""Defaults that more than one layer writes down, written here once.

It imports nothing, so the manifest, the client, the engine and the CLI can all refer to it
without an upward import. A default that only one module uses stays in that module.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CONCURRENCY", "MAX_ATTEMPTS", "POLL_MAX", "POLL_MIN", "QUEUE_MAX_SIZE", "RATE"]

# Requests per second: CI's documented quota for async processing in mainland-China regions.
RATE: Final = 100.0
# HTTP requests in flight.
CONCURRENCY: Final = 16
# Tries of one request, the first included.
MAX_ATTEMPTS: Final = 5
# Seconds between describes of outstanding jobs: from POLL_MIN, backing off to POLL_MAX.
POLL_MIN: Final = 0.5
POLL_MAX: Final = 30.0
# Jobs a CI queue holds when DescribePicProcessQueues does not say (CI's example queue).
QUEUE_MAX_SIZE: Final = 10000
