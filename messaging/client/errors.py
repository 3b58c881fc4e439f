"""What the client raises: one base class, and the service's problem+json answers
as typed exceptions, so that a caller catches what it can act on (a key refused,
a stream expired) and reads the fields the service sent instead of parsing text."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from messaging.client.retry import parse_retry_after

REQUEST_ID_HEADER = "X-Request-Id"


class MessagingError(Exception):
    """Anything the client raises: an answer that is an error, a service it could
    not reach, or an answer it could not read."""


class ConnectionFailed(MessagingError):
    """The service could not be reached, or the connection broke, on every attempt
    (the aiohttp error of the last one is the __cause__)."""


class MalformedResponse(MessagingError):
    """An answer that is not what the API documents: a server bug or something that
    is not this service, never a reason to retry."""


class MalformedEvent(MalformedResponse):
    """An event of the stream whose data does not have the documented shape. The
    stream's last_event_id stays before it; event_id is its position, for a caller
    that decides to resume after it."""

    def __init__(self, message: str, *, event_id: str, event_type: str, data: str) -> None:
        super().__init__(message)
        self.event_id = event_id
        self.event_type = event_type
        self.data = data


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One invalid field of a request: a JSON pointer (`/timestamp`) or a header or
    query parameter name, and what is wrong with it."""

    field: str
    message: str


class ApiError(MessagingError):
    """The service answered an error: the fields of its RFC 9457 problem body."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        type: str = "about:blank",
        instance: str | None = None,
        errors: list[FieldProblem] | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type
        self.instance = instance
        self.errors = errors
        self.request_id = request_id
        # Seconds the service asked the client to wait (Retry-After), if it did.
        self.retry_after = retry_after


class BadRequest(ApiError):
    """400: the request is not valid; `errors` names each field."""


class Unauthorized(ApiError):
    """401: no API key, or one that is unknown or revoked."""


class Forbidden(ApiError):
    """403: the API key lacks the scope the route needs."""


class NotFound(ApiError):
    """404: no such conversation, message or route."""


class StreamExpired(ApiError):
    """410 from the event stream: the Last-Event-ID is older than the stream's log
    keeps. Events were missed; re-read the lists, then follow events() from now."""


class Unprocessable(ApiError):
    """422: the Idempotency-Key names an earlier send with another request, or the
    database refused the data."""


class TooManyRequests(ApiError):
    """429, once the retries are spent (or Retry-After asked for longer than the
    client waits)."""


class Unavailable(ApiError):
    """503, once the retries are spent: the database is down, or a limit is reached."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    410: StreamExpired,
    422: Unprocessable,
    429: TooManyRequests,
    503: Unavailable,
}


async def error_from_response(response: aiohttp.ClientResponse) -> ApiError:
    """The typed error of an error answer. A body that is not problem+json (a
    proxy's page, say) still gives an ApiError, its text as the detail."""
    text = await response.text(errors="replace")
    problem: dict[str, Any] = {}
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        problem = parsed
    raw_errors = problem.get("errors")
    errors = None
    if isinstance(raw_errors, list):
        errors = [
            FieldProblem(str(e.get("field", "")), str(e.get("message", "")))
            for e in raw_errors
            if isinstance(e, dict)
        ]
    request_id = problem.get("request_id") or response.headers.get(REQUEST_ID_HEADER)
    instance = problem.get("instance")
    cls = _BY_STATUS.get(response.status, ApiError)
    return cls(
        response.status,
        str(problem.get("title") or response.reason or "Error"),
        str(problem.get("detail") or text[:500]),
        type=str(problem.get("type") or "about:blank"),
        instance=str(instance) if instance is not None else None,
        errors=errors,
        request_id=str(request_id) if request_id else None,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
    )
