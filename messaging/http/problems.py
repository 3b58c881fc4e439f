"""The one error shape of the API (RFC 9457 application/problem+json), and the
one place where an exception becomes a status (problem_for, called by the
middleware in middleware.py)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from messaging.errors import (
    BodyNotReceived,
    ClientGone,
    DatabaseFailed,
    DatabaseRejected,
    DatabaseUnavailable,
    FieldError,
    Forbidden,
    IdempotencyKeyReused,
    InvalidRequest,
    NotFound,
    SignatureRejected,
    StreamGone,
    TooManyStreams,
    Unauthenticated,
)

log = logging.getLogger("messaging.http")

REQUEST_ID = web.RequestKey("request_id", str)
RETRY_AFTER_S = 2
# The challenge of a 401 and a 403 (RFC 6750): a client learns the scheme, and
# whether its key was refused or lacks a scope.
BEARER_REALM = 'Bearer realm="messaging"'

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    410: "Gone",
    408: "Request Timeout",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    # nginx's convention for a request whose client hung up; never seen by that
    # client, only in logs and metrics.
    499: "Client Closed Request",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def problem(
    request: web.Request,
    status: int,
    detail: str,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": request.path,
    }
    if errors:
        body["errors"] = [{"field": e.field, "message": e.message} for e in errors]
    request_id = request.get(REQUEST_ID)
    if request_id:
        body["request_id"] = request_id
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/problem+json",
        headers=headers,
    )


def outcome_of(exc: BaseException) -> str:
    """The outcome label a request that raised is counted with in the webhook and
    send metrics: the same reading of the exception as problem_for's."""
    if isinstance(exc, InvalidRequest | web.HTTPRequestEntityTooLarge):
        return "invalid"
    if isinstance(exc, SignatureRejected):
        return "unauthenticated"
    if isinstance(exc, ClientGone | ConnectionResetError | asyncio.CancelledError):
        # The client hung up: mid-body, or while its request was served where
        # aiohttp cancels the handler of a lost connection.
        return "aborted"
    if isinstance(exc, BodyNotReceived):
        return "slow_body"
    if isinstance(exc, IdempotencyKeyReused):
        return "conflict"
    if isinstance(exc, DatabaseUnavailable | DatabaseFailed):
        return "unavailable"
    return "error"


def _retry_later(
    request: web.Request,
    exc: Exception,
    what: str,
    message: str,
    action: str,
    *,
    level: int = logging.WARNING,
) -> web.Response:
    """A 503 with Retry-After for a database that failed the request, logged (an
    error, with the traceback, when nobody foresaw it)."""
    log.log(
        level,
        message,
        exc_info=exc if level >= logging.ERROR else None,
        extra={"action": action, "error": str(exc), "request_id": request.get(REQUEST_ID)},
    )
    return problem(
        request,
        503,
        f"{what}; nothing was stored. Retry later.",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def problem_for(request: web.Request, exc: Exception) -> web.Response:
    """The problem+json response for an exception: the only place where errors
    become statuses."""
    if isinstance(exc, InvalidRequest):
        return problem(request, exc.status, exc.detail, exc.errors)
    if isinstance(exc, NotFound):
        return problem(request, 404, str(exc) or "Not found.")
    if isinstance(exc, Unauthenticated):
        challenge = BEARER_REALM + (', error="invalid_token"' if exc.invalid_key else "")
        return problem(request, 401, exc.detail, headers={"WWW-Authenticate": challenge})
    if isinstance(exc, Forbidden):
        challenge = f'{BEARER_REALM}, error="insufficient_scope", scope="{exc.scope}"'
        return problem(request, 403, exc.detail, headers={"WWW-Authenticate": challenge})
    if isinstance(exc, SignatureRejected):
        log.info(
            "request unauthenticated",
            extra={
                "action": "unauthenticated",
                "reason": exc.reason,
                "path": request.path,
                "request_id": request.get(REQUEST_ID),
            },
        )
        return problem(request, 401, exc.detail, headers={"WWW-Authenticate": exc.challenge})
    if isinstance(exc, RequestPayloadError):
        # A body aiohttp could not read (a chunked body that does not parse),
        # wherever it was read.
        return problem(request, 400, f"The body could not be read: {str(exc).splitlines()[-1]}")
    if isinstance(exc, BodyNotReceived):
        headers = {"Retry-After": str(RETRY_AFTER_S)} if exc.status == 503 else None
        return problem(request, exc.status, exc.detail, headers=headers)
    if isinstance(exc, ClientGone | ConnectionResetError):
        log.info(
            "client closed the connection mid-request",
            extra={"action": "client_gone", "request_id": request.get(REQUEST_ID)},
        )
        return problem(request, 499, str(exc))
    if isinstance(exc, IdempotencyKeyReused):
        return problem(
            request,
            422,
            str(exc),
            [FieldError("Idempotency-Key", "names an earlier send with another request")],
        )
    if isinstance(exc, StreamGone):
        return problem(request, 410, f"{exc} Read the lists again, then open a new stream.")
    if isinstance(exc, TooManyStreams):
        return problem(
            request, 503, f"{exc} Retry later.", headers={"Retry-After": str(RETRY_AFTER_S)}
        )
    if isinstance(exc, DatabaseRejected):
        log.warning(
            "database refused a request's data",
            extra={
                "action": "db_rejected",
                "error": str(exc),
                "request_id": request.get(REQUEST_ID),
            },
        )
        return problem(
            request, 422, "The database refused this request's data; nothing was stored."
        )
    if isinstance(exc, DatabaseUnavailable):
        return _retry_later(
            request, exc, "The database is unavailable", "database unavailable", "db_unavailable"
        )
    if isinstance(exc, DatabaseFailed):
        # Not an outage, and not the request's fault: a database error we did not
        # foresee. The request may succeed later (or once an operator looks), so
        # 503 with Retry-After, and the traceback for the operator.
        return _retry_later(
            request,
            exc,
            "The database answered with an unexpected error",
            "database error",
            "db_failed",
            level=logging.ERROR,
        )
    if isinstance(exc, web.HTTPException) and exc.status >= 400:
        detail = {
            404: f"No route for {request.path}.",
            405: f"{request.method} is not allowed on {request.path}.",
            413: "The body is larger than this service accepts.",
        }.get(exc.status, exc.reason)
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return problem(request, exc.status, detail, headers=headers)
    if isinstance(exc, web.HTTPException):
        raise exc
    log.error(
        "unhandled error",
        exc_info=exc,
        extra={"action": "http_error", "request_id": request.get(REQUEST_ID)},
    )
    return problem(request, 500, "An unexpected error occurred.")
