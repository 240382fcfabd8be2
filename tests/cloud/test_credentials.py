"""Rotation rules of the credential provider, with a fake source and a controlled clock."""

from __future__ import annotations

import asyncio
import logging

import pytest

from orchestrator.cloud.clock import ServiceClock, is_skew_error
from orchestrator.cloud.credential_sources import Fetched
from orchestrator.cloud.credentials import CredentialProvider, is_expired_credentials
from orchestrator.cloud.signing import Credentials
from orchestrator.exceptions import CredentialsError, CredentialsUnavailable, ServiceError


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class FakeSource:
    name = "fake"

    def __init__(self, clock: Clock, lifetime: float) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.fetches = 0
        self.failing: str | None = None

    async def fetch(self) -> Fetched:
        self.fetches += 1
        if self.failing:
            raise CredentialsError(self.failing)
        creds = Credentials(f"AKIDtmp{self.fetches}", "key", "token")
        return Fetched(creds, "fake", self.clock() + self.lifetime)

    async def close(self) -> None:
        return None


async def _provider(lifetime: float) -> tuple[CredentialProvider, FakeSource, Clock]:
    clock = Clock()
    source = FakeSource(clock, lifetime)
    return CredentialProvider(await source.fetch(), source, clock=clock), source, clock


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_the_thresholds_follow_the_lifetime_the_credentials_had_when_fetched() -> None:
    long, _, _ = await _provider(7200)
    short, _, _ = await _provider(30)
    assert (long.refresh_below, long.margin) == (300, 10)
    assert (short.refresh_below, short.margin) == (10, 3)


async def test_credentials_are_refreshed_in_the_background_once_a_third_of_their_life_is_left() -> (
    None
):
    provider, source, clock = await _provider(30)
    clock.now += 19.5  # 10.5 s left: not yet
    assert (await provider.get()).secret_id == "AKIDtmp1"
    await _settle()
    assert source.fetches == 1
    clock.now += 1  # 9.5 s left: refresh, but sign with the current ones meanwhile
    assert (await provider.get()).secret_id == "AKIDtmp1"
    await _settle()
    assert source.fetches == 2
    assert (await provider.get()).secret_id == "AKIDtmp2"


async def test_no_request_is_signed_with_credentials_about_to_expire() -> None:
    provider, source, clock = await _provider(30)
    clock.now += 28  # 2 s left, under the 3 s margin: wait for fresh ones
    assert (await provider.get()).secret_id == "AKIDtmp2"
    assert source.fetches == 2


async def test_a_failed_refresh_keeps_the_current_credentials_logs_once_and_backs_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    provider, source, clock = await _provider(30)
    source.failing = "fake: the metadata service is down"
    clock.now += 21
    with caplog.at_level(logging.DEBUG, logger="orchestrator"):
        for _ in range(3):
            assert (await provider.get()).secret_id == "AKIDtmp1"
            await _settle()
        assert source.fetches == 2  # one attempt, then the backoff holds the next
        clock.now += 1
        await provider.get()
        await _settle()
    assert source.fetches == 3
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "the metadata service is down" in warnings[0].getMessage()
    source.failing = None
    clock.now += 5
    await provider.get()
    await _settle()
    assert (await provider.get()).secret_id.startswith("AKIDtmp")
    assert provider.current.credentials.secret_id != "AKIDtmp1"


async def test_expired_credentials_that_cannot_be_refreshed_say_why_and_may_be_retried() -> None:
    provider, source, clock = await _provider(30)
    source.failing = "fake: no route to the metadata service"
    clock.now += 29.5
    with pytest.raises(CredentialsUnavailable, match="no route to the metadata service") as caught:
        await provider.get()
    assert caught.value.retryable


async def test_concurrent_expired_refusals_refresh_once() -> None:
    provider, source, _ = await _provider(30)
    used = provider.current.credentials
    await asyncio.gather(*(provider.expired(used) for _ in range(16)))
    assert source.fetches == 2


async def test_static_credentials_never_refresh() -> None:
    provider = CredentialProvider.static(Credentials("AKIDstatic", "key"))
    assert not provider.temporary
    assert (await provider.get()).secret_id == "AKIDstatic"


@pytest.mark.parametrize(
    ("status", "code", "message", "expired"),
    [
        (400, "ExpiredToken", "The provided token has expired.", True),
        (401, "AccessDenied", "the security token has expired", True),
        (401, "SecretidNotExist", "", True),
        (403, "InvalidAccessKeyId", "", True),
        (403, "AccessDenied", "Access Denied.", False),
        (403, "SignatureDoesNotMatch", "", False),
    ],
)
def test_which_refusals_mean_expired_credentials(
    status: int, code: str, message: str, expired: bool
) -> None:
    assert is_expired_credentials(ServiceError(status, code, message)) is expired


@pytest.mark.parametrize(
    ("status", "code", "message", "skew"),
    [
        (403, "RequestTimeTooSkewed", "", True),
        (403, "AccessDenied", "Request has expired", True),
        (401, "SignatureExpired", "", True),
        (403, "AccessDenied", "Access Denied.", False),
    ],
)
def test_which_refusals_mean_clock_skew(status: int, code: str, message: str, skew: bool) -> None:
    assert is_skew_error(ServiceError(status, code, message)) is skew


def test_the_service_clock_adopts_the_offset_of_a_date_header_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ServiceClock(lambda: 1_700_000_000.0)
    with caplog.at_level(logging.WARNING, logger="orchestrator"):
        assert clock.correct("Tue, 14 Nov 2023 22:33:20 GMT")  # +1200 s
        assert not clock.correct("Tue, 14 Nov 2023 22:33:21 GMT")  # within the Date's resolution
    assert clock.offset == 1200.5
    assert clock.now() == 1_700_001_200.5
    assert not clock.correct("not a date")
    assert len(caplog.records) == 1
