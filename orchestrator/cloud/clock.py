"""The service's time as this host sees it: the local clock plus an offset learnt from refusals.

A host whose clock drifted signs requests outside the window COS and CI accept; they answer
`403 RequestTimeTooSkewed`, `AccessDenied` "Request has expired" (COS) or `401
SignatureExpired` (CI), with their own time in the `Date` header. The offset between that and
the local clock is what later signatures add (as the official JavaScript SDK does).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime

from orchestrator.exceptions import ServiceError

__all__ = ["ServiceClock", "is_skew_error"]

log = logging.getLogger(__name__)

# Below this a difference is the Date header's one-second resolution plus transit, not skew.
_TOLERANCE = 2.0


def is_skew_error(error: ServiceError) -> bool:
    """True when the refusal says the signature's time window does not hold the service's now."""
    if error.error_code in ("RequestTimeTooSkewed", "SignatureExpired"):
        return True
    return (
        error.error_code == "AccessDenied" and "request has expired" in error.error_message.lower()
    )


class ServiceClock:
    """`now()` is the local clock corrected by the offset the service's `Date` showed."""

    def __init__(self, local: Callable[[], float] = time.time) -> None:
        self.local = local
        self.offset = 0.0
        self._logged = False

    def now(self) -> float:
        return self.local() + self.offset

    def correct(self, date_header: str | None) -> bool:
        """Adopt the offset the `Date` header shows; True when it changed the offset."""
        if not date_header:
            return False
        try:
            # The header has whole seconds: the service's time is within the second it names.
            service = parsedate_to_datetime(date_header).timestamp() + 0.5
        except (TypeError, ValueError, IndexError):
            return False
        offset = service - self.local()
        if abs(offset - self.offset) < _TOLERANCE:
            return False
        self.offset = offset
        if not self._logged:
            self._logged = True
            log.warning(
                "this host's clock is %+.0f s off the service's; signing with the service's time",
                -offset,
            )
        return True
