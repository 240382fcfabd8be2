"""COS/CI request signing (q-sign-algorithm=sha1): a pure function of the request and the time."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote

__all__ = [
    "SIGNED_HEADERS",
    "Credentials",
    "Signer",
    "authorization",
    "key_time",
    "parse_authorization",
    "sign_key",
    "signature",
    "string_to_sign",
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


def _canonical(
    pairs: Iterable[tuple[str, str]], encode: Callable[[str], str] = uri_encode
) -> tuple[str, str]:
    encoded = sorted((encode(k).lower(), encode(v)) for k, v in pairs)
    return ";".join(k for k, _ in encoded), "&".join(f"{k}={v}" for k, v in encoded)


def _hex_hmac(key: bytes, message: bytes) -> str:
    return hmac.digest(key, message, "sha1").hex()


def sign_key(credentials: Credentials, kt: str) -> str:
    """The SignKey of a KeyTime: the same for every request signed in that window."""
    return _hex_hmac(credentials.secret_key.encode(), kt.encode())


def string_to_sign(
    method: str,
    path: str,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    kt: str,
    *,
    sign_all_headers: bool = False,
    encode: Callable[[str], str] = uri_encode,
) -> tuple[str, str, str]:
    """The signed headers' and parameters' lists, and the StringToSign, of one request."""
    param_list, http_params = _canonical(params.items(), encode) if params else ("", "")
    header_list, http_headers = _canonical(
        ((k, v) for k, v in headers.items() if sign_all_headers or _should_sign(k)), encode
    )
    http_string = f"{method.lower()}\n{path}\n{http_params}\n{http_headers}\n"
    sha = hashlib.sha1(http_string.encode()).hexdigest()
    return header_list, param_list, f"sha1\n{kt}\n{sha}\n"


def signature(key: str, string: str) -> str:
    """The q-signature of a StringToSign under a SignKey."""
    return _hex_hmac(key.encode(), string.encode())


def _signed(
    method: str,
    path: str,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    secret_id: str,
    kt: str,
    key: str,
    sign_all_headers: bool,
    encode: Callable[[str], str] = uri_encode,
) -> str:
    header_list, param_list, string = string_to_sign(
        method, path, params, headers, kt, sign_all_headers=sign_all_headers, encode=encode
    )
    return (
        f"q-sign-algorithm=sha1&q-ak={secret_id}&q-sign-time={kt}&q-key-time={kt}"
        f"&q-header-list={header_list}&q-url-param-list={param_list}"
        f"&q-signature={signature(key, string)}"
    )


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
    key = sign_key(credentials, kt)
    return _signed(method, path, params, headers, credentials.secret_id, kt, key, sign_all_headers)


class Signer:
    """`authorization` for one client's stream of requests: the signing key is derived once
    per credentials and KeyTime (the KeyTime moves once a second), and the encoded form of the
    names and values that come back in every request (Host, Content-Type, lengths) is kept."""

    __slots__ = ("_encoded", "_key")

    def __init__(self) -> None:
        self._key: tuple[Credentials, str, str] | None = None
        self._encoded: dict[str, str] = {}

    def _encode(self, value: str) -> str:
        encoded = self._encoded.get(value)
        if encoded is None:
            if len(self._encoded) >= 256:  # object keys and tokens go by; keep it small
                self._encoded.clear()
            encoded = self._encoded[value] = uri_encode(value)
        return encoded

    def authorization(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        headers: Mapping[str, str],
        credentials: Credentials,
        start: int,
        end: int,
    ) -> str:
        """As `authorization(...)`, with the headers a COS SDK signs."""
        kt = key_time(start, end)
        cached = self._key
        if cached is None or cached[0] is not credentials or cached[1] != kt:
            cached = self._key = (credentials, kt, sign_key(credentials, kt))
        return _signed(
            method, path, params, headers, credentials.secret_id, kt, cached[2], False, self._encode
        )


def parse_authorization(value: str) -> dict[str, str]:
    """The fields of an Authorization header (q-ak, q-sign-time, q-header-list, ...)."""
    fields: dict[str, str] = {}
    for part in value.split("&"):
        name, sep, val = part.partition("=")
        if sep:
            fields[name.strip()] = val.strip()
    return fields
