"""The one error shape of the API (RFC 9457 application/problem+json) and the
middleware that produces it: every exception becomes a status here, once."""

from __future__ import annotations

import itertools
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from messaging.errors import (
    BodyNotReceived,
    ClientGone,
    DatabaseRejected,
    DatabaseUnavailable,
    FieldError,
    IdempotencyKeyReused,
    InvalidRequest,
    NotFound,
)

log = logging.getLogger("messaging.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REQUEST_ID_HEADER = "X-Request-Id"
REQUEST_ID = web.RequestKey("request_id", str)
RETRY_AFTER_S = 2

_TITLES = {
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
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


# Request ids: a random prefix per process and a counter, unique across
# processes and restarts, and cheaper on the hot path than a uuid4 per request.
_ID_PREFIX = secrets.token_hex(6)
_id_counter = itertools.count(1)


@web.middleware
async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The one middleware of the API, kept to one frame on the hot path:

    - a request id (X-Request-Id propagated, or generated), echoed in the response;
    - 406 for an /api/ request whose Accept excludes JSON;
    - every exception mapped to a problem+json response (problem_for);
    - one structured log line per request, when INFO is enabled.
    """
    request_id = request.headers.get(REQUEST_ID_HEADER, "")[:128] or (
        f"{_ID_PREFIX}-{next(_id_counter):06x}"
    )
    request[REQUEST_ID] = request_id
    started = time.perf_counter()
    try:
        accept = request.headers.get("Accept")
        if accept and request.path.startswith("/api/") and not _accepts_json(accept):
            raise InvalidRequest(
                "This API answers in JSON; the Accept header excludes it.", status=406
            )
        response = await handler(request)
    except Exception as exc:
        response = problem_for(request, exc)
    if not request.content.is_eof():
        # A body left unread (refused, too slow, undecodable): close the
        # connection instead of letting aiohttp read the rest of it.
        response.force_close()
    response.headers[REQUEST_ID_HEADER] = request_id
    if log.isEnabledFor(logging.INFO):
        log.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status,
            extra={
                "action": "http_request",
                "request_id": request_id,
                "method": request.method,
                "path": request.path,
                "status": response.status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 3),
            },
        )
    return response


def problem_for(request: web.Request, exc: Exception) -> web.Response:
    """The problem+json response for an exception: the only place where errors
    become statuses."""
    if isinstance(exc, InvalidRequest):
        return problem(request, exc.status, exc.detail, exc.errors)
    if isinstance(exc, NotFound):
        return problem(request, 404, str(exc) or "Not found.")
    if isinstance(exc, BodyNotReceived):
        headers = {"Retry-After": str(RETRY_AFTER_S)} if exc.status == 503 else None
        return problem(request, exc.status, exc.detail, headers=headers)
    if isinstance(exc, ClientGone):
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
        log.warning(
            "database unavailable",
            extra={
                "action": "db_unavailable",
                "error": str(exc),
                "request_id": request.get(REQUEST_ID),
            },
        )
        return problem(
            request,
            503,
            "The database is unavailable; nothing was stored. Retry later.",
            headers={"Retry-After": str(RETRY_AFTER_S)},
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


def _accepts_json(accept: str) -> bool:
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        media = media.lower()
        quality = 1.0
        for param in params:
            if param.lower().startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        if quality > 0 and (
            media in ("*/*", "application/*", "application/json", "application/problem+json")
            or media.endswith("+json")
        ):
            return True
    return False
