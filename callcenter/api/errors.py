"""Errors a service or handler raises to end a request with a clear status, code and offending field.

Services raise these with plain meaning (``NotFound``, ``Conflict``); the API middleware turns them into
``{"error": {"code", "message", "field"}}``. They carry no aiohttp types, so services stay socket-free.
"""

from __future__ import annotations

from typing import ClassVar


class ApiError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None,
                 details: list[dict[str, str | None]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details
        if code is not None:
            self.code = code  # type: ignore[misc]

    def headers(self) -> dict[str, str]:
        """HTTP headers the answer must carry besides the JSON body."""
        return {}

    def body(self) -> dict[str, object]:
        error: dict[str, object] = {"code": self.code, "message": self.message, "field": self.field}
        if self.details:
            error["details"] = self.details
        return {"error": error}


class MalformedRequest(ApiError):
    status = 400
    code = "malformed_json"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class Invalid(ApiError):
    """The request is well-formed but breaks a rule (schema, range, reference to a missing row)."""

    status = 422
    code = "invalid"


class RangeNotSatisfiable(ApiError):
    """A byte range outside the resource (or malformed): the answer names the resource's size."""

    status = 416
    code = "range_not_satisfiable"

    def __init__(self, message: str, *, size: int) -> None:
        super().__init__(message, field="Range")
        self.size = size

    def headers(self) -> dict[str, str]:
        return {"Content-Range": f"bytes */{self.size}"}


class _RetryLater(ApiError):
    """Refused for a while: ``Retry-After`` says how long (seconds)."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class Locked(_RetryLater):
    """Too many wrong passwords for this username from this address (users.login_guard)."""

    status = 423
    code = "account_locked"


class TooManyRequests(_RetryLater):
    """Too many attempts from this address (or for this account from unknown addresses)."""

    status = 429
    code = "too_many_requests"


class Unavailable(ApiError):
    """A part the request needs (Asterisk over AMI) is down right now; nothing was changed."""

    status = 503
    code = "unavailable"
