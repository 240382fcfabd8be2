"""The one place where sqlite3 and OS errors become a one-line `LedgerError` naming the file."""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Concatenate, ParamSpec, Protocol, TypeVar

from orchestrator.exceptions import LedgerError

__all__ = ["guarded", "ledger_error", "translating"]


class _HasPath(Protocol):
    @property
    def path(self) -> Path: ...


_P = ParamSpec("_P")
_R = TypeVar("_R")
_S = TypeVar("_S", bound=_HasPath)


@contextmanager
def translating(path: Path, action: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as exc:
        raise ledger_error(path, action, str(exc)) from exc
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.filename is not None and os.fspath(exc.filename) != os.fspath(path):
            reason = f"{reason}: {exc.filename}"
        raise ledger_error(path, action, reason) from exc


def ledger_error(path: Path, action: str, reason: str) -> LedgerError:
    return LedgerError(" ".join(f"{path}: cannot {action}: {reason}".split()))


def guarded(
    action: str,
) -> Callable[[Callable[Concatenate[_S, _P], _R]], Callable[Concatenate[_S, _P], _R]]:
    """A method decorator: the method's errors, translated, naming the ledger's file."""

    def decorate(method: Callable[Concatenate[_S, _P], _R]) -> Callable[Concatenate[_S, _P], _R]:
        @functools.wraps(method)
        def wrapper(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            with translating(self.path, action):
                return method(self, *args, **kwargs)

        return wrapper

    return decorate
