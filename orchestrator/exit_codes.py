"""The exit codes of every picjobs command: part of the contract crontabs and scripts read."""

from __future__ import annotations

import enum

__all__ = ["ExitCode"]


class ExitCode(enum.IntEnum):
    OK = 0  # every item succeeded (or was skipped: skip_existing), or there was nothing to do
    FAILED = 1  # finished, some items failed (or a preflight check failed)
    USAGE = 2  # usage, manifest or ledger error
    LOCKED = 3  # another run holds the ledger's lock
    TRIPPED = 4  # the failure threshold tripped
    INCOMPLETE = 75  # resumable: deadline, signal, --no-wait with jobs running, CI kept refusing
