"""Hedged reads: a read the client takes for a straggler is sent again, and the first to end
decides. The transport's part (calling STRAGGLING) is played here by the fake request."""

from __future__ import annotations

import asyncio

import pytest

from orchestrator.cloud.hedge import hedged
from orchestrator.cloud.transport import STRAGGLING
from orchestrator.exceptions import ServiceError


class Reads:
    """Fake reads: the first `lost` of them straggle and never end; the others answer in turn
    with what `answers` holds (a value, or an error to raise)."""

    def __init__(self, lost: int, *answers: object) -> None:
        self.lost = lost
        self.answers = list(answers)
        self.calls = 0
        self.cancelled = 0

    async def __call__(self) -> object:
        self.calls += 1
        if self.calls <= self.lost:
            notify = STRAGGLING.get()
            assert notify is not None
            notify()
            try:
                await asyncio.get_running_loop().create_future()  # the answer never comes
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


async def test_a_read_that_answers_is_sent_once() -> None:
    reads = Reads(0, "page")

    assert await hedged(reads) == "page"
    assert reads.calls == 1


async def test_a_read_that_straggles_is_answered_by_its_copy_and_the_straggler_is_dropped() -> None:
    reads = Reads(1, "page")

    assert await hedged(reads) == "page"
    assert (reads.calls, reads.cancelled) == (2, 1)


async def test_a_copy_refused_is_the_caller_s_to_retry_at_once() -> None:
    refused = ServiceError(503, "ServiceUnavailable", "busy")
    reads = Reads(1, refused)

    with pytest.raises(ServiceError):
        await hedged(reads)
    assert (reads.calls, reads.cancelled) == (2, 1)


async def test_the_copy_is_not_hedged_again() -> None:
    reads = Reads(1, "page")

    async def copy_without_notice() -> object:
        # The copy runs outside the straggler's context: nobody is listening for it.
        if reads.calls >= 1:
            assert STRAGGLING.get() is None
        return await reads()

    assert await hedged(copy_without_notice) == "page"
