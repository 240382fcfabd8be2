"""Temporary credentials, as the CVM metadata service and STS hand them out.

With `--temporary-credentials SECONDS` the emulator issues credentials valid for that long,
issues new ones once the current ones reach half their life, accepts any unexpired one it
issued (with its token) and refuses expired ones with the real codes: COS `400 ExpiredToken`,
CI `401 AccessDenied`. The metadata service lives under `/_emulator/metadata/` (point
PICJOBS_METADATA_ENDPOINT at `<url>/_emulator/metadata/latest/meta-data/`):

GET .../latest/meta-data/cam/security-credentials/          the role name
GET .../latest/meta-data/cam/security-credentials/<role>    {"TmpSecretId", ..., "Code"}
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from orchestrator.cloud.signing import Credentials
from orchestrator.emulator.errors import (
    ApiError,
    CIAccessDenied,
    ExpiredToken,
    InvalidAccessKeyId,
    SecretidNotExist,
)

__all__ = ["METADATA_PREFIX", "ROLE", "Issued", "Issuer", "serve_metadata"]

METADATA_PREFIX = "/_emulator/metadata/latest/meta-data/"
ROLE = "picjobs-emulator-role"


@dataclass(frozen=True)
class Issued:
    credentials: Credentials
    issued_at: float
    expires_at: float

    def as_json(self) -> dict[str, object]:
        expiration = datetime.fromtimestamp(self.expires_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "TmpSecretId": self.credentials.secret_id,
            "TmpSecretKey": self.credentials.secret_key,
            "Token": self.credentials.token,
            "ExpiredTime": _seconds(self.expires_at, self.expires_at - self.issued_at),
            "Expiration": expiration,
            "Code": "Success",
        }


def _seconds(at: float, lifetime: float) -> float | int:
    # Whole seconds on the wire, as the real service; the short lifetimes tests use keep
    # milliseconds, which a whole second would eat into (clients read either).
    return int(at) if lifetime >= 60 else round(at, 3)


class Issuer:
    """Issues, rotates and checks the emulator's temporary credentials on the given clock."""

    def __init__(self, lifetime: float, clock: Callable[[], float]) -> None:
        self.lifetime = lifetime
        self.clock = clock
        self.issued: dict[str, Issued] = {}
        self._current: Issued | None = None
        self.counts: Counter[str] = Counter()

    def current(self) -> Issued:
        """The credentials to hand out now: new ones from half-life on."""
        now = self.clock()
        cur = self._current
        if cur is None or now - cur.issued_at >= self.lifetime / 2:
            expires = now + self.lifetime
            creds = Credentials(
                "AKIDtmp" + secrets.token_hex(12), secrets.token_hex(16), secrets.token_hex(24)
            )
            cur = self._current = Issued(creds, now, expires)
            self.issued[creds.secret_id] = cur
            self.counts["issued"] += 1
            self._forget(now)
        return cur

    def _forget(self, now: float) -> None:
        stale = [k for k, v in self.issued.items() if v.expires_at < now - 3600]
        for key in stale:
            del self.issued[key]

    def lookup(self, secret_id: str, *, ci: bool, now: float) -> Credentials | None:
        """The issued credentials for `secret_id`; None when it is not ours; raises if expired."""
        issued = self.issued.get(secret_id)
        if issued is None:
            return None
        if now >= issued.expires_at:
            self.counts["expired_refusals"] += 1
            error: ApiError = (
                CIAccessDenied("the security token has expired") if ci else ExpiredToken()
            )
            raise error
        return issued.credentials


def unknown_key(ci: bool) -> ApiError:
    return SecretidNotExist() if ci else InvalidAccessKeyId()


def serve_metadata(issuer: Issuer | None, path: str) -> web.Response:
    """The metadata service's answers (plain text role name, JSON credentials)."""
    rest = path[len(METADATA_PREFIX) :]
    if issuer is None or not rest.startswith("cam/security-credentials/"):
        return web.Response(status=404, text="Not Found")
    role = rest[len("cam/security-credentials/") :]
    if role == "":
        issuer.counts["metadata_role"] += 1
        return web.Response(text=ROLE)
    if role != ROLE:
        return web.Response(status=404, text="Not Found")
    issuer.counts["metadata_credentials"] += 1
    body = json.dumps(issuer.current().as_json())
    return web.Response(text=body, content_type="application/json")
