"""COS/CI request signing (q-sign-algorithm=sha1): a pure function of the request and the time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

__all__ = [
    "SIGNED_HEADERS",
    "Credentials",
    "authorization",
    "key_time",
    "parse_authorization",
    "uri_encode",
]

# Headers the official Python SDK signs (plus every x-cos-* and x-ci-*); Date is not signed.
SIGNED_HEADERS = frozenset(
    {
        "cache-control",
        "content-disposition",
        "content-encoding",
        "content-type",
        "content-md5",
        "content-length",
        "expect",
        "expires",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-unmodified-since",
        "origin",
        "range",
        "transfer-encoding",
        "pic-operations",
    }
)


@dataclass(frozen=True)
class Credentials:
    """A SecretId/SecretKey pair and an optional session token. The repr shows neither secret."""

    secret_id: str
    secret_key: str = field(repr=False)
    token: str | None = field(default=None, repr=False)

    def __str__(self) -> str:
        return f"Credentials(secret_id={self.secret_id!r})"


def uri_encode(value: str) -> str:
    """UTF-8 percent-encoding of everything but A-Z a-z 0-9 - _ . ~ (so '/' is %2F, ' ' is %20)."""
    return quote(value, safe="-_.~")


def key_time(start: int, end: int) -> str:
    return f"{start};{end}"


def _should_sign(name: str) -> bool:
    lowered = name.lower()
    return lowered in SIGNED_HEADERS or lowered.startswith(("x-cos-", "x-ci-"))


def _canonical(pairs: Iterable[tuple[str, str]]) -> tuple[str, str]:
    encoded = sorted((uri_encode(k).lower(), uri_encode(v)) for k, v in pairs)
    return ";".join(k for k, _ in encoded), "&".join(f"{k}={v}" for k, v in encoded)


def authorization(
    method: str,
    path: str,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    credentials: Credentials,
    start: int,
    end: int,
    *,
    sign_all_headers: bool = False,
) -> str:
    """The Authorization header value for one request.

    `path` is the decoded URI path (not percent-encoded). Every query parameter is signed;
    of the headers, those a COS SDK signs, or all of them when `sign_all_headers`.
    """
    kt = key_time(start, end)
    sign_key = hmac.new(credentials.secret_key.encode(), kt.encode(), hashlib.sha1).hexdigest()
    param_list, http_params = _canonical(params.items())
    header_list, http_headers = _canonical(
        (k, v) for k, v in headers.items() if sign_all_headers or _should_sign(k)
    )
    http_string = f"{method.lower()}\n{path}\n{http_params}\n{http_headers}\n"
    string_to_sign = f"sha1\n{kt}\n{hashlib.sha1(http_string.encode()).hexdigest()}\n"
    signature = hmac.new(sign_key.encode(), string_to_sign.encode(), hashlib.sha1).hexdigest()
    return (
        f"q-sign-algorithm=sha1&q-ak={credentials.secret_id}&q-sign-time={kt}&q-key-time={kt}"
        f"&q-header-list={header_list}&q-url-param-list={param_list}&q-signature={signature}"
    )


def parse_authorization(value: str) -> dict[str, str]:
    """The fields of an Authorization header (q-ak, q-sign-time, q-header-list, ...)."""
    fields: dict[str, str] = {}
    for part in value.split("&"):
        name, sep, val = part.partition("=")
        if sep:
            fields[name.strip()] = val.strip()
    return fields
