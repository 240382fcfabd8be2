"""Signature verification of COS/CI requests (ci-api.md §9).

The signature is recomputed over exactly the headers and query parameters the Authorization
lists, with the values actually received and the decoded path; anything not listed is ignored,
as the real services do (the Python SDK leaves `?cancel` unsigned). The Authorization may come
as a header or as `q-*` query parameters. When a security token is configured the request
must carry it, signed, in `x-ci-security-token` or `x-cos-security-token` (either on any path).

CI answers auth failures with 401 and its own codes, COS with 403 (ci-api.md §7.2, §7.3). The
signing window is checked against real time, not the emulator's advanced clock, so that
`advance` never expires the signatures of a client that signs with its own clock.
"""

from __future__ import annotations

import functools
import hmac
import re
from collections.abc import Callable, Iterable, Mapping

from orchestrator.cloud.signing import (
    Credentials,
    key_time,
    parse_authorization,
    sign_key,
    signature,
    string_to_sign,
    uri_encode,
)
from orchestrator.emulator.errors import (
    AccessDenied,
    ApiError,
    CIAccessDenied,
    InvalidAccessKeyId,
    InvalidAuthorization,
    MissingAuthorization,
    RequestTimeTooSkewed,
    SecretidNotExist,
    SignatureDoesNotMatch,
    SignatureExpired,
)

__all__ = ["verify"]

_FIELDS = (
    "q-sign-algorithm",
    "q-ak",
    "q-sign-time",
    "q-key-time",
    "q-header-list",
    "q-url-param-list",
    "q-signature",
)
_TOKEN_HEADERS = ("x-ci-security-token", "x-cos-security-token")
_MAX_SKEW = 900
# What uri_encode leaves as it is.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def _fail(ci: bool, ci_error: ApiError, cos_error: ApiError) -> ApiError:
    return ci_error if ci else cos_error


def verify(
    method: str,
    path: str,
    params: Iterable[tuple[str, str]],
    headers: Iterable[tuple[str, str]],
    credentials: Credentials | Callable[[str], Credentials],
    *,
    ci: bool,
    now: float,
) -> None:
    """Raise the CI (`ci`) or COS flavour of auth error unless the request is signed right.
    `credentials` may be a lookup by SecretId (temporary credentials), raising when unknown."""
    param_list = list(params)
    header_map: dict[str, str] = {}
    # Canonical (encoded, lower-cased) name -> the name and value as received, as for the query:
    # a signed name like `x-cos-meta-a!b` is listed encoded (`x-cos-meta-a%21b`).
    signable: dict[str, tuple[str, str]] = {}
    for name, value in headers:
        header_map.setdefault(name.lower(), value)
        signable.setdefault(_canonical_name(name), (name, value))
    # Canonical (encoded, lower-cased) name -> the name and value as received.
    query: dict[str, tuple[str, str]] = {}
    for name, value in param_list:
        query.setdefault(_canonical_name(name), (name, value))
    query_map = {canonical: value for canonical, (_, value) in query.items()}

    fields = _authorization_fields(header_map, query_map, ci=ci)
    if callable(credentials):
        credentials = credentials(fields["q-ak"])
    if fields["q-ak"] != credentials.secret_id:
        raise _fail(ci, SecretidNotExist(), InvalidAccessKeyId())
    start, end = _window(fields, ci=ci)
    if now > end:
        raise _fail(ci, SignatureExpired(), AccessDenied("Request has expired"))
    if now < start:
        if start - now > _MAX_SKEW:
            raise _fail(ci, SignatureExpired(), RequestTimeTooSkewed())
        raise _fail(ci, SignatureExpired(), AccessDenied("Request has expired"))

    header_names = [n for n in fields["q-header-list"].split(";") if n]
    param_names = [n for n in fields["q-url-param-list"].split(";") if n]
    signed_headers: dict[str, str] = {}
    for name in header_names:
        if name not in signable:
            raise _fail(ci, InvalidAuthorization(), SignatureDoesNotMatch())
        original, value = signable[name]
        signed_headers[original] = value
    signed_params: dict[str, str] = {}
    for name in param_names:
        if name not in query:
            raise _fail(ci, InvalidAuthorization(), SignatureDoesNotMatch())
        original, value = query[name]
        signed_params[original] = value
    kt = key_time(start, end)
    _, _, string = string_to_sign(
        method, path, signed_params, signed_headers, kt, sign_all_headers=True, encode=_encoded
    )
    expected = signature(_sign_key(credentials, kt), string)
    if not hmac.compare_digest(expected, fields["q-signature"].lower()):
        raise _fail(ci, InvalidAuthorization(), SignatureDoesNotMatch())

    if credentials.token is not None:
        _check_token(credentials.token, header_map, query_map, header_names, param_names, ci=ci)


@functools.lru_cache(maxsize=1024)
def _canonical_name(name: str) -> str:
    """A header or parameter name as a signature lists it (percent-encoded, lower-cased)."""
    return uri_encode(name).lower()


def _encoded(value: str) -> str:
    return value if _UNRESERVED.fullmatch(value) else uri_encode(value)


# The SignKey of a KeyTime is the same for every request a client signs in one window.
_sign_key = functools.lru_cache(maxsize=64)(sign_key)


def _authorization_fields(
    header_map: Mapping[str, str], query_map: Mapping[str, str], *, ci: bool
) -> dict[str, str]:
    raw = header_map.get("authorization")
    if raw is not None:
        fields = parse_authorization(raw)
    elif "q-sign-algorithm" in query_map:
        fields = {name: query_map[name] for name in _FIELDS if name in query_map}
    else:
        raise _fail(ci, MissingAuthorization(), AccessDenied("The request is not signed."))
    if any(name not in fields for name in _FIELDS) or fields["q-sign-algorithm"] != "sha1":
        raise _fail(
            ci,
            InvalidAuthorization("the Authorization is malformed"),
            AccessDenied("The Authorization is malformed."),
        )
    return fields


def _window(fields: Mapping[str, str], *, ci: bool) -> tuple[int, int]:
    start_text, sep, end_text = fields["q-sign-time"].partition(";")
    if (
        fields["q-key-time"] != fields["q-sign-time"]
        or not (sep and start_text.isdigit() and end_text.isdigit())
        or int(start_text) > int(end_text)
    ):
        raise _fail(
            ci,
            InvalidAuthorization("q-sign-time is malformed"),
            AccessDenied("q-sign-time is malformed."),
        )
    return int(start_text), int(end_text)


def _check_token(
    token: str,
    header_map: Mapping[str, str],
    query_map: Mapping[str, str],
    header_names: list[str],
    param_names: list[str],
    *,
    ci: bool,
) -> None:
    for name in _TOKEN_HEADERS:
        if name in header_map:
            value, signed = header_map[name], name in header_names
            break
        if name in query_map:
            value, signed = query_map[name], name in param_names
            break
    else:
        raise _fail(
            ci,
            CIAccessDenied("the request lacks the security token"),
            AccessDenied("The request lacks the security token."),
        )
    if not signed:
        raise _fail(
            ci,
            CIAccessDenied("the security token is not signed"),
            AccessDenied("The security token is not signed."),
        )
    if not hmac.compare_digest(value.encode(), token.encode()):
        raise _fail(
            ci,
            CIAccessDenied("the security token is invalid"),
            AccessDenied("The security token is invalid."),
        )
