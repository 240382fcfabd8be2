"""API errors the emulator answers with, as exceptions carrying HTTP status, Code and Message.

Backend and handlers raise these; the app renders them. The same exception is rendered in the
flavour of the route that raised it: CI routes answer `<Error><Code/><Message/><RequestId/>
<TraceId/></Error>` (no Resource, ci-api.md §7.1), COS routes add `<Resource/>`.

CI and COS disagree on authentication statuses (CI says 401, COS 403) and throttling (CI 429,
COS 503), so those have one class per service.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AccessDenied",
    "ApiError",
    "CIAccessDenied",
    "CISlowDown",
    "COSSlowDown",
    "ExpiredToken",
    "InternalError",
    "InvalidAccessKeyId",
    "InvalidArgument",
    "InvalidAuthorization",
    "InvalidContent",
    "InvalidDelimiter",
    "InvalidURI",
    "KeyTooLong",
    "MethodNotAllowed",
    "MissingAuthorization",
    "MissingContent",
    "NoSuchBucket",
    "NoSuchKey",
    "QueueSaturated",
    "RequestEntityTooLarge",
    "RequestTimeTooSkewed",
    "SecretidNotExist",
    "ServiceUnavailable",
    "SignatureDoesNotMatch",
    "SignatureExpired",
]


class ApiError(Exception):
    """An error answer: `status`, `code` and a default `message`, overridable per instance."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "InternalError"
    default_message: ClassVar[str] = "internal error"

    def __init__(self, message: str | None = None) -> None:
        self.message = message if message is not None else self.default_message
        super().__init__(f"{self.status} {self.code}: {self.message}")


class InternalError(ApiError):
    pass


class ServiceUnavailable(ApiError):
    status = 503
    code = "ServiceUnavailable"
    default_message = "Service is unavailable now, please try again"


class InvalidArgument(ApiError):
    status = 400
    code = "InvalidArgument"
    default_message = "invalid argument"


class MissingContent(ApiError):
    status = 400
    code = "MissingContent"
    default_message = "the request body is missing"


class InvalidContent(ApiError):
    status = 400
    code = "InvalidContent"
    default_message = "the request body is not valid XML"


class RequestEntityTooLarge(InvalidContent):
    status = 413
    default_message = "the request body is too large"


class InvalidDelimiter(ApiError):
    status = 400
    code = "InvalidDelimiter"
    default_message = "the delimiter must be a single character"


class InvalidURI(ApiError):
    status = 400
    code = "InvalidURI"
    default_message = "the object key is not valid"


class KeyTooLong(ApiError):
    status = 400
    code = "KeyTooLong"
    default_message = "the object key is longer than 850 bytes"


class NoSuchBucket(ApiError):
    status = 404
    code = "NoSuchBucket"
    default_message = "The specified bucket does not exist."


class NoSuchKey(ApiError):
    status = 404
    code = "NoSuchKey"
    default_message = "The specified key does not exist."


class MethodNotAllowed(ApiError):
    status = 405
    code = "MethodNotAllowed"
    default_message = "The specified method is not allowed against this resource."


class QueueSaturated(ApiError):
    status = 403
    code = "QueueSaturated"
    default_message = "the queue is full"


# CI authentication: 401.


class MissingAuthorization(ApiError):
    status = 401
    code = "MissingAuthorization"
    default_message = "the request carries no Authorization"


class InvalidAuthorization(ApiError):
    status = 401
    code = "InvalidAuthorization"
    default_message = "the signature does not match"


class SignatureExpired(ApiError):
    status = 401
    code = "SignatureExpired"
    default_message = "the signature time window does not contain the current time"


class SecretidNotExist(ApiError):
    status = 401
    code = "SecretidNotExist"
    default_message = "the SecretId does not exist"


class CIAccessDenied(ApiError):
    status = 401
    code = "AccessDenied"
    default_message = "access denied"


class CISlowDown(ApiError):
    status = 429
    code = "SlowDown"
    default_message = "Please reduce your request rate."


# COS authentication: 403.


class AccessDenied(ApiError):
    status = 403
    code = "AccessDenied"
    default_message = "Access Denied."


class SignatureDoesNotMatch(ApiError):
    status = 403
    code = "SignatureDoesNotMatch"
    default_message = (
        "The request signature we calculated does not match the signature you provided."
    )


class InvalidAccessKeyId(ApiError):
    status = 403
    code = "InvalidAccessKeyId"
    default_message = "The access key Id format you provided is invalid."


class RequestTimeTooSkewed(ApiError):
    status = 403
    code = "RequestTimeTooSkewed"
    default_message = "The difference between the request time and the server's time is too large."


class ExpiredToken(ApiError):
    status = 400
    code = "ExpiredToken"
    default_message = "The provided token has expired."


class COSSlowDown(ApiError):
    status = 503
    code = "SlowDown"
    default_message = "Please reduce your request rate."
