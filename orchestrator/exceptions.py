"""
The exception tree of picjobs. Foreign exceptions (aiohttp, sqlite3, lxml, tomllib)
are translated into these at one boundary each and never escape the library.

* PicjobsError
  + UsageError                   bad input from the user: exit code 2
    - ManifestError              the manifest (file, line or key named in the message)
    - SourceError                a source file or listing (CSV row, inventory manifest)
    - OutputCollision            two inputs would write the same output object
    - CredentialsError           no credentials could be had from the chosen source(s)
  + LedgerError                  the SQLite ledger cannot be opened, written or migrated
    - LockHeld                   another run holds the ledger's lock: exit code 3
  + CIError                      anything that went wrong talking to CI or COS
    - TransportError             no usable HTTP response
      · ConnectError             the request never left: safe to resend
        · TLSError               the server's certificate was refused: do not resend
      · ReadTimeout            timed out after sending: outcome unknown
      · DisconnectError          connection lost mid-response: outcome unknown
      · CredentialsUnavailable   temporary credentials expired and could not be refreshed
    - ServiceError               an HTTP error answer, with status, Code, Message, RequestId
    - ResponseError              a 2xx answer we cannot use (malformed, truncated, hostile)

Every CIError carries a `disposition`: RETRYABLE (resend freely), UNKNOWN (the request
may have taken effect; reconcile before resending) or PERMANENT (do not resend).
"""

from __future__ import annotations

import enum

from orchestrator.exit_codes import ExitCode

__all__ = [
    "CIError",
    "ConnectError",
    "CredentialsError",
    "CredentialsUnavailable",
    "DisconnectError",
    "Disposition",
    "LedgerError",
    "LockHeld",
    "ManifestError",
    "OutputCollision",
    "PicjobsError",
    "ReadTimeout",
    "ResponseError",
    "ServiceError",
    "SourceError",
    "TLSError",
    "TransportError",
    "UsageError",
]


class Disposition(enum.Enum):
    RETRYABLE = "retryable"
    UNKNOWN = "unknown"
    PERMANENT = "permanent"


class PicjobsError(Exception):
    """Base of every error picjobs raises on purpose."""

    exit_code: ExitCode = ExitCode.FAILED


class UsageError(PicjobsError):
    """The user's input cannot be used as given."""

    exit_code = ExitCode.USAGE


class ManifestError(UsageError):
    """The manifest is malformed or invalid."""


class SourceError(UsageError):
    """A source of object keys is malformed or missing."""


class OutputCollision(UsageError):
    """Two different inputs would be written to the same output object."""

    def __init__(
        self, output: str, first_key: str, second_key: str, *, jobs: tuple[str, str] | None = None
    ) -> None:
        self.output = output
        self.first_key = first_key
        self.second_key = second_key
        self.jobs = jobs
        if jobs is None or jobs[0] == jobs[1]:
            what = f"{first_key!r} and {second_key!r}"
        else:
            what = f"{first_key!r} (job {jobs[0]}) and {second_key!r} (job {jobs[1]})"
        super().__init__(f"output collision: {what} both map to {output!r}")


class CredentialsError(UsageError):
    """No credentials could be had; the message says from which source and why (no secret)."""


class LedgerError(PicjobsError):
    """The ledger cannot be opened, written or migrated."""

    exit_code = ExitCode.USAGE


class LockHeld(LedgerError):
    """Another run holds the ledger's lock."""

    exit_code = ExitCode.LOCKED


class CIError(PicjobsError):
    """Talking to CI or COS failed."""

    disposition: Disposition = Disposition.PERMANENT

    @property
    def code(self) -> str:
        return type(self).__name__

    @property
    def retryable(self) -> bool:
        return self.disposition is Disposition.RETRYABLE


class TransportError(CIError):
    """No usable HTTP response arrived."""

    disposition = Disposition.UNKNOWN


class ConnectError(TransportError):
    """The connection could not be made, so the request never left."""

    disposition = Disposition.RETRYABLE


class TLSError(ConnectError):
    """TLS verification of the server failed; resending cannot help."""

    disposition = Disposition.PERMANENT


class ReadTimeout(TransportError):
    """The request was sent but no answer came in time."""


class DisconnectError(TransportError):
    """The connection was lost after the request was sent."""


class CredentialsUnavailable(ConnectError):
    """The current temporary credentials expire before a request could arrive and refreshing
    them failed: the request was not sent."""


# Codes that CI or COS use for throttling and temporary unavailability. A full or paused queue
# refuses the job without creating it, so sending it again later is safe.
_RETRYABLE_CODES = frozenset(
    {"SlowDown", "ServiceUnavailable", "KmsFreqControl", "QueueSaturated", "QueuePaused"}
)


class ServiceError(CIError):
    """CI or COS answered with an HTTP error."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        request_id: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.error_code = code
        self.error_message = message
        self.request_id = request_id
        self.retry_after = retry_after
        text = f"HTTP {status} {code}"
        if message:
            text += f": {message}"
        if request_id:
            text += f" (RequestId {request_id})"
        super().__init__(text)

    @property
    def code(self) -> str:
        return self.error_code

    @property
    def throttled(self) -> bool:
        return self.status == 429 or self.error_code == "SlowDown"

    @property
    def disposition(self) -> Disposition:  # type: ignore[override]
        if self.status in (429, 503) or self.error_code in _RETRYABLE_CODES:
            return Disposition.RETRYABLE
        if self.status >= 500:
            return Disposition.UNKNOWN
        return Disposition.PERMANENT


class ResponseError(CIError):
    """A successful HTTP answer whose body cannot be used."""

    disposition = Disposition.UNKNOWN
