"""The one boundary where aiohttp's and asyncio's exceptions become picjobs' own."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import aiohttp

from orchestrator.exceptions import (
    ConnectError,
    DisconnectError,
    ReadTimeout,
    ResponseError,
    TLSError,
    TransportError,
)

__all__ = ["translate_errors"]


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """The one place where aiohttp's and asyncio's exceptions become ours."""
    try:
        yield
    except aiohttp.ClientSSLError as exc:
        raise TLSError(f"TLS failure: {_describe(exc)}") from None
    except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
        raise ConnectError(f"cannot connect: {_describe(exc)}") from None
    except (aiohttp.SocketTimeoutError, TimeoutError) as exc:
        raise ReadTimeout(f"timed out waiting for the answer{_suffix(exc)}") from None
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
        raise DisconnectError(f"connection lost mid-answer: {_describe(exc)}") from None
    except aiohttp.ClientResponseError as exc:
        raise ResponseError(f"unreadable answer: {_describe(exc)}") from None
    except (aiohttp.ClientOSError, ConnectionError) as exc:
        raise DisconnectError(f"connection error: {_describe(exc)}") from None
    except aiohttp.InvalidURL as exc:
        raise ConnectError(f"invalid endpoint URL: {exc}") from None
    except aiohttp.ClientError as exc:
        raise TransportError(f"HTTP client error: {_describe(exc)}") from None


def _describe(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # some aiohttp errors cannot render without their request
        text = ""
    return text.splitlines()[0] if text.strip() else type(exc).__name__


def _suffix(exc: BaseException) -> str:
    text = _describe(exc)
    return "" if text == type(exc).__name__ else f": {text}"
