"""Where credentials come from: the environment, the Tencent Cloud profile file, the CVM
instance role (metadata service) and the TKE OIDC role (STS AssumeRoleWithWebIdentity).

Each source's `fetch()` returns `Fetched` or raises CredentialsError with one line saying why,
never a secret. Nothing here blocks the event loop: the metadata service is read with aiohttp,
the file and the SDK's blocking STS call run in a thread.
"""

from __future__ import annotations

import asyncio
import configparser
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp

from orchestrator.cloud.signing import Credentials
from orchestrator.exceptions import CredentialsError

__all__ = [
    "DEFAULT_METADATA_ENDPOINT",
    "CvmRoleSource",
    "EnvSource",
    "Fetched",
    "ProfileSource",
    "Source",
    "TkeOidcSource",
    "sources_for",
]

DEFAULT_METADATA_ENDPOINT = "http://metadata.tencentyun.com/latest/meta-data/"
DEFAULT_STS_ENDPOINT = "https://sts.tencentcloudapi.com"
# The SDK's own variables (TENCENTCLOUD_SECRET_ID/KEY are what its EnvironmentVariableCredential
# reads; the token and profile variables are those of its CLI and Terraform provider).
_SDK_ENV = ("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_KEY", "TENCENTCLOUD_SESSION_TOKEN")
_COS_ENV = ("COS_SECRET_ID", "COS_SECRET_KEY", "COS_SECURITY_TOKEN")
PROFILE_ENV = "TENCENTCLOUD_PROFILE"
_TKE_ENV = ("TKE_REGION", "TKE_PROVIDER_ID", "TKE_WEB_IDENTITY_TOKEN_FILE", "TKE_ROLE_ARN")


@dataclass(frozen=True)
class Fetched:
    """Credentials as a source gave them; `expires_at` (unix seconds) is None for permanent keys."""

    credentials: Credentials
    source: str
    expires_at: float | None = None
    detail: str = field(default="")

    @property
    def temporary(self) -> bool:
        return self.expires_at is not None


class Source(Protocol):
    name: str

    async def fetch(self) -> Fetched: ...

    async def close(self) -> None: ...


class EnvSource:
    """COS_SECRET_ID/COS_SECRET_KEY(/COS_SECURITY_TOKEN), else the SDK's TENCENTCLOUD_* ones."""

    name = "env"

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    async def fetch(self) -> Fetched:
        for id_var, key_var, token_var in (_COS_ENV, _SDK_ENV):
            secret_id, secret_key = self.environ.get(id_var, ""), self.environ.get(key_var, "")
            if secret_id and secret_key:
                token = self.environ.get(token_var) or None
                return Fetched(Credentials(secret_id, secret_key, token), self.name, None, id_var)
            if secret_id or secret_key:
                missing = key_var if secret_id else id_var
                raise CredentialsError(f"env: {missing} is not set (its pair is)")
        raise CredentialsError(
            "env: set COS_SECRET_ID and COS_SECRET_KEY (or TENCENTCLOUD_SECRET_ID and"
            " TENCENTCLOUD_SECRET_KEY)"
        )

    async def close(self) -> None:
        return None


class ProfileSource:
    """A profile of the SDK's credentials file: INI, `[name]` with secret_id, secret_key (and
    token), at ~/.tencentcloud/credentials or else /etc/tencentcloud/credentials."""

    name = "profile"

    def __init__(self, profile: str | None, environ: Mapping[str, str]) -> None:
        self.profile = profile or environ.get(PROFILE_ENV) or "default"
        home = environ.get("HOME")
        base = Path(home) if home else Path.home()
        self.paths = (base / ".tencentcloud" / "credentials", Path("/etc/tencentcloud/credentials"))

    async def fetch(self) -> Fetched:
        return await asyncio.to_thread(self._read)

    def _read(self) -> Fetched:
        path = next((p for p in self.paths if p.is_file()), None)
        if path is None:
            raise CredentialsError(f"profile: no credentials file at {self.paths[0]}")
        parser = configparser.ConfigParser(interpolation=None)
        try:
            with path.open(encoding="utf-8") as handle:
                parser.read_file(handle)
        except (OSError, UnicodeDecodeError) as exc:
            raise CredentialsError(f"profile: cannot read {path}: {_first_line(exc)}") from None
        except configparser.Error as exc:
            # The parser's message quotes the offending line, which may hold a key: not shown.
            raise CredentialsError(
                f"profile: {path} is not an INI file ({type(exc).__name__})"
            ) from None
        if not parser.has_section(self.profile):
            raise CredentialsError(f"profile: {path} has no [{self.profile}] profile")
        section = {k: v.strip().strip('"') for k, v in parser.items(self.profile)}
        secret_id, secret_key = section.get("secret_id", ""), section.get("secret_key", "")
        for name, value in (("secret_id", secret_id), ("secret_key", secret_key)):
            if not value:
                raise CredentialsError(f"profile: [{self.profile}] in {path} has no {name}")
        token = section.get("token") or None
        detail = f"{path} [{self.profile}]"
        return Fetched(Credentials(secret_id, secret_key, token), self.name, None, detail)

    async def close(self) -> None:
        return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class CvmRoleSource:
    """The CAM role bound to this CVM, from the instance metadata service."""

    name = "cvm-role"

    def __init__(self, base: str, *, timeout: float = 5.0) -> None:
        self.base = base if base.endswith("/") else base + "/"
        self.timeout = timeout
        self.role: str | None = None
        self._session: aiohttp.ClientSession | None = None

    async def _get(self, url: str) -> str:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout, sock_connect=self.timeout / 2)
            )
        try:
            async with self._session.get(url, allow_redirects=False) as resp:
                text = await resp.text(errors="replace")
                if resp.status == 404:
                    raise CredentialsError(
                        f"cvm-role: {url} answered 404: no CAM role is bound to this instance"
                    )
                if resp.status != 200:
                    raise CredentialsError(f"cvm-role: {url} answered HTTP {resp.status}")
                return text
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise CredentialsError(
                f"cvm-role: cannot reach the metadata service at {self.base}"
                f" ({_first_line(exc) if str(exc) else type(exc).__name__}); is this a CVM?"
            ) from None

    async def fetch(self) -> Fetched:
        root = self.base + "cam/security-credentials/"
        if self.role is None:
            role = (await self._get(root)).strip().splitlines()
            if not role or not role[0].strip():
                raise CredentialsError("cvm-role: no CAM role is bound to this instance")
            self.role = role[0].strip()
        text = await self._get(root + self.role)
        try:
            data = json.loads(text)
        except ValueError:
            raise CredentialsError(
                f"cvm-role: role {self.role!r}: the answer is not JSON"
            ) from None
        if not isinstance(data, dict) or data.get("Code") != "Success":
            code = data.get("Code") if isinstance(data, dict) else None
            raise CredentialsError(f"cvm-role: role {self.role!r}: Code {code!r}, not Success")
        return _temporary(data, self.name, f"role {self.role}", "cvm-role")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _temporary(data: Mapping[str, Any], source: str, detail: str, label: str) -> Fetched:
    try:
        creds = Credentials(str(data["TmpSecretId"]), str(data["TmpSecretKey"]), str(data["Token"]))
        expires = float(data["ExpiredTime"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CredentialsError(f"{label}: the answer lacks {_first_line(exc)}") from None
    return Fetched(creds, source, expires, detail)


class TkeOidcSource:
    """The TKE web-identity role: the service-account token exchanged at STS
    (AssumeRoleWithWebIdentity, unsigned) through the SDK's CommonClient, in a thread."""

    name = "tke-oidc"

    def __init__(self, environ: Mapping[str, str], *, duration: int = 7200) -> None:
        self.environ = environ
        self.duration = duration
        self.endpoint = environ.get("PICJOBS_STS_ENDPOINT") or DEFAULT_STS_ENDPOINT

    async def fetch(self) -> Fetched:
        return await asyncio.to_thread(self._assume)

    def _assume(self) -> Fetched:
        missing = [name for name in _TKE_ENV if not self.environ.get(name)]
        if missing:
            raise CredentialsError(f"tke-oidc: {', '.join(missing)} not set (is this a TKE pod?)")
        region, provider, token_file, role_arn = (self.environ[name] for name in _TKE_ENV)
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise CredentialsError(
                f"tke-oidc: cannot read {token_file}: {_first_line(exc)}"
            ) from None
        if not token:
            raise CredentialsError(f"tke-oidc: the token file {token_file} is empty")
        from tencentcloud.common.common_client import CommonClient
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
            TencentCloudSDKException,
        )
        from tencentcloud.common.profile.client_profile import ClientProfile
        from tencentcloud.common.profile.http_profile import HttpProfile

        url = urlsplit(self.endpoint)
        http = HttpProfile(protocol=url.scheme or "https", endpoint=url.netloc, reqTimeout=10)
        client = CommonClient(
            "sts", "2018-08-13", None, region, profile=ClientProfile(httpProfile=http)
        )
        params = {
            "ProviderId": provider,
            "WebIdentityToken": token,
            "RoleArn": role_arn,
            "RoleSessionName": f"picjobs-{int(time.time())}",
            "DurationSeconds": self.duration,
        }
        try:
            answer = client.call_json(
                "AssumeRoleWithWebIdentity", params, options={"SkipSign": True}
            )
        except TencentCloudSDKException as exc:
            code, message = exc.get_code(), _first_line(Exception(exc.get_message() or ""))
            raise CredentialsError(
                f"tke-oidc: STS at {url.netloc} refused: {code} {message}"
            ) from None
        except Exception as exc:  # the SDK lets requests' and json's errors through
            raise CredentialsError(
                f"tke-oidc: cannot call STS at {url.netloc}: {type(exc).__name__}"
            ) from None
        response = answer.get("Response", {}) if isinstance(answer, dict) else {}
        error = response.get("Error") if isinstance(response, dict) else None
        if isinstance(error, dict):
            code, message = error.get("Code"), _first_line(Exception(error.get("Message") or ""))
            raise CredentialsError(f"tke-oidc: STS at {url.netloc} refused: {code} {message}")
        creds = dict(response.get("Credentials") or {})
        creds["ExpiredTime"] = response.get("ExpiredTime")
        return _temporary(creds, self.name, f"role {role_arn}", "tke-oidc")

    async def close(self) -> None:
        return None


def sources_for(
    choice: str, *, profile: str | None = None, environ: Mapping[str, str] | None = None
) -> list[Source]:
    """The sources `[target] credentials` names, in the order `auto` tries them."""
    env = os.environ if environ is None else environ
    metadata = env.get("PICJOBS_METADATA_ENDPOINT") or DEFAULT_METADATA_ENDPOINT
    every: dict[str, Source] = {
        "env": EnvSource(env),
        "profile": ProfileSource(profile, env),
        "cvm-role": CvmRoleSource(metadata, timeout=2.0 if choice == "auto" else 5.0),
        "tke-oidc": TkeOidcSource(env),
    }
    if choice == "auto":
        return list(every.values())
    return [every[choice]]
