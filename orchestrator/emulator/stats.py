"""Counters a test or benchmark reads through `GET /_emulator/stats`."""

from __future__ import annotations

import time
from collections import Counter, deque
from typing import Any

__all__ = ["Stats"]

_TIMES_KEPT = 100_000
_FAILURES_KEPT = 100
_CALLBACK_COUNTS = ("queued", "sent", "failed", "refused", "attempts", "retries")


class Stats:
    """Requests per route, responses per status, faults injected per kind, and what was
    submitted how often."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.responses: Counter[str] = Counter()  # HTTP status, or 'dropped'
        # (route, kind) -> faults that took effect; kind is a Fault value, 'latency' or
        # 'latency_after' for a held request, or 'abandoned' for a request held before it was
        # handled whose client hung up meanwhile (its drawn outcome never applied).
        self.faults: Counter[tuple[str, str]] = Counter()
        self.jobs_created = 0
        # (input bucket, input key, output bucket, output key) -> jobs created for it
        self.submissions: Counter[tuple[str, str, str, str]] = Counter()
        self.ci_times: deque[float] = deque(maxlen=_TIMES_KEPT)
        # Job callbacks: 'queued' per finished job that has somewhere to notify, then one of
        # 'sent', 'failed' (every attempt failed) or 'refused' (the address is not allowed);
        # 'attempts' and 'retries' count POSTs. The last failures are kept with their reason.
        self.callbacks: Counter[str] = Counter()
        self.callback_failures: deque[dict[str, str]] = deque(maxlen=_FAILURES_KEPT)
        self.errors: Counter[str] = Counter()  # error answers per Code

    def request(self, route: str, *, ci: bool) -> None:
        self.requests[route] += 1
        if ci:
            self.ci_times.append(time.monotonic())

    def response(self, status: int | str) -> None:
        self.responses[str(status)] += 1

    def refused(self, code: str) -> None:
        self.errors[code] += 1

    def fault(self, route: str, kind: str) -> None:
        self.faults[route, kind] += 1

    def job_created(self, pair: tuple[str, str, str, str]) -> None:
        self.jobs_created += 1
        self.submissions[pair] += 1

    def callback(self, outcome: str) -> None:
        self.callbacks[outcome] += 1

    def callback_failed(self, outcome: str, job_id: str, host: str, reason: str) -> None:
        self.callbacks[outcome] += 1
        self.callback_failures.append(
            {"outcome": outcome, "job_id": job_id, "host": host, "reason": reason}
        )

    def snapshot(self, *, times: bool = False) -> dict[str, Any]:
        duplicated = {pair: n for pair, n in self.submissions.items() if n > 1}
        totals: Counter[str] = Counter()
        by_route: dict[str, Counter[str]] = {}
        for (route, kind), n in self.faults.items():
            totals[kind] += n
            by_route.setdefault(route, Counter())[kind] += n
        result: dict[str, Any] = {
            "requests": dict(sorted(self.requests.items())),
            "responses": dict(sorted(self.responses.items())),
            "faults": dict(sorted(totals.items())),
            "faults_by_route": {
                route: dict(sorted(kinds.items())) for route, kinds in sorted(by_route.items())
            },
            "errors": dict(sorted(self.errors.items())),
            "jobs_created": self.jobs_created,
            "submissions": [
                {
                    "input_bucket": pair[0],
                    "input_object": pair[1],
                    "output_bucket": pair[2],
                    "output_object": pair[3],
                    "count": n,
                }
                for pair, n in self.submissions.items()
            ],
            "duplicate_pairs": len(duplicated),
            "duplicate_submissions": sum(n - 1 for n in duplicated.values()),
            "callbacks": {
                **{name: self.callbacks[name] for name in _CALLBACK_COUNTS},
                "failures": list(self.callback_failures),
            },
        }
        if times:
            result["ci_request_times"] = list(self.ci_times)
        return result
