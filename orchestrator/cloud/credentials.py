"""The credentials every request is signed with: resolved once from a source, and, when they
are temporary, refreshed before they expire.

Rules (issue 12): refresh in the background once the time left falls below min(5 minutes, a
third of the lifetime they had when fetched); never sign with credentials that expire before
the request can arrive (within `margin`: min(10 s, a tenth of that lifetime)), waiting for a
refresh instead; a failed refresh keeps the current credentials, logs once and retries with
backoff. A request refused because its credentials expired asks `expired()` for fresh ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence

from orchestrator.cloud.credential_sources import Fetched, Source, sources_for
from orchestrator.cloud.signing import Credentials
from orchestrator.exceptions import CredentialsError, CredentialsUnavailable, ServiceError

__all__ = ["CredentialProvider", "is_expired_credentials", "resolve_credentials"]

log = logging.getLogger(__name__)

_REFRESH_CAP = 300.0
_MARGIN_CAP = 10.0
_BACKOFF_CAP = 60.0
# Refusals that mean "these credentials are no longer (or not yet) valid", in COS's and CI's words.
_EXPIRED_CODES = frozenset({"ExpiredToken", "InvalidAccessKeyId", "SecretidNotExist"})
_CI_AUTH_CODES = frozenset({"AccessDenied", "InvalidAuthorization"})


def is_expired_credentials(error: ServiceError) -> bool:
    """True for COS `400 ExpiredToken` and the 401/403 answers an expired token or key gets."""
    if error.error_code in _EXPIRED_CODES:
        return True
    return error.status == 401 and error.error_code in _CI_AUTH_CODES


class CredentialProvider:
    """Hands out the credentials to sign with; refreshes temporary ones from their source."""

    def __init__(
        self,
        fetched: Fetched,
        source: Source | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.clock = clock
        self._set(fetched)
        self._task: asyncio.Task[None] | None = None
        self._failures = 0
        self._next_attempt = 0.0
        self._last_error = ""
        self.refreshes = 0

    @classmethod
    def static(cls, credentials: Credentials) -> CredentialProvider:
        return cls(Fetched(credentials, "static"))

    def _set(self, fetched: Fetched) -> None:
        self.current = fetched
        now = self.clock()
        self._lifetime = None if fetched.expires_at is None else max(0.0, fetched.expires_at - now)

    @property
    def temporary(self) -> bool:
        return self.current.expires_at is not None and self.source is not None

    @property
    def refresh_below(self) -> float:
        return min(_REFRESH_CAP, (self._lifetime or 0.0) / 3)

    @property
    def margin(self) -> float:
        return min(_MARGIN_CAP, (self._lifetime or 0.0) / 10)

    def _backoff(self) -> float:
        base = min(1.0, (self._lifetime or 60.0) / 20)
        backoff: float = base * 2 ** (self._failures - 1)
        return min(_BACKOFF_CAP, (self._lifetime or 600.0) / 6, backoff)

    def remaining(self) -> float | None:
        expires = self.current.expires_at
        return None if expires is None else expires - self.clock()

    async def get(self) -> Credentials:
        """Credentials valid for at least `margin` more seconds."""
        remaining = self.remaining()
        if remaining is None or self.source is None:
            return self.current.credentials
        if remaining <= self.margin:
            if self._task is None and self.clock() < self._next_attempt:
                raise self._unavailable()
            await self._refresh()
            remaining = self.remaining()
            if remaining is None or remaining <= self.margin:
                raise self._unavailable()
        elif (
            remaining < self.refresh_below
            and self._task is None
            and self.clock() >= self._next_attempt
        ):
            self._task = asyncio.create_task(self._run_refresh())
        return self.current.credentials

    def _unavailable(self) -> CredentialsUnavailable:
        why = f": {self._last_error}" if self._last_error else ""
        return CredentialsUnavailable(
            f"the {self.current.source} credentials expire and could not be refreshed{why}"
        )

    async def expired(self, used: Credentials) -> None:
        """A request signed with `used` was refused as expired: refresh unless already done."""
        if self.source is None or self.current.credentials is not used:
            return
        await self._refresh()

    async def _refresh(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run_refresh())
        await asyncio.shield(self._task)

    async def _run_refresh(self) -> None:
        assert self.source is not None
        try:
            fetched = await self.source.fetch()
        except CredentialsError as exc:
            self._failures += 1
            self._last_error = str(exc)
            self._next_attempt = self.clock() + self._backoff()
            level = logging.WARNING if self._failures == 1 else logging.DEBUG
            log.log(level, "refreshing credentials failed; keeping the current ones: %s", exc)
        else:
            if self._failures:
                log.info("credentials refreshed from %s again", fetched.source)
            self._failures = 0
            self._last_error = ""
            self._next_attempt = 0.0
            self.refreshes += 1
            self._set(fetched)
        finally:
            self._task = None

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.source is not None:
            await self.source.close()

    def describe(self) -> str:
        """The source and, for temporary credentials, when they expire; never a secret."""
        text = self.current.source
        if self.current.detail:
            text += f" ({self.current.detail})"
        if self.current.expires_at is not None:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.current.expires_at))
            text += f", temporary, expires {stamp}"
        return text


async def resolve_credentials(
    choice: str = "auto",
    *,
    profile: str | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time,
    sources: Sequence[Source] | None = None,
) -> CredentialProvider:
    """The first source that gives credentials; CredentialsError naming why each failed."""
    candidates = (
        list(sources)
        if sources is not None
        else sources_for(choice, profile=profile, environ=environ)
    )
    reasons: list[str] = []
    for source in candidates:
        try:
            fetched = await source.fetch()
        except CredentialsError as exc:
            reasons.append(str(exc))
            await source.close()
            continue
        for other in candidates:
            if other is not source:
                await other.close()
        provider = CredentialProvider(fetched, source, clock=clock)
        # Keys from the environment are today's default and need no mention at INFO.
        level = logging.DEBUG if fetched.source == "env" else logging.INFO
        log.log(level, "credentials from %s", provider.describe())
        return provider
    if len(reasons) == 1:
        raise CredentialsError(f"no credentials: {reasons[0]}")
    raise CredentialsError("no credentials found: " + "; ".join(reasons))
