"""The one error shape of the API (RFC 9457 application/problem+json) and the
middlewares that produce it: every exception becomes a status here, once."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from messaging.errors import (
    DatabaseRejected,
    DatabaseUnavailable,
    FieldError,
    IdempotencyKeyReused,
    InvalidRequest,
    NotFound,
)
from messaging.payloads import parse_json

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
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
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


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id (propagated or generated, echoed back) and one log line per request."""
    request_id = request.headers.get(REQUEST_ID_HEADER, "")[:128] or uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    started = time.perf_counter()
    response = await handler(request)
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


@web.middleware
async def errors_to_problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map every exception to a problem+json response."""
    try:
        return await handler(request)
    except InvalidRequest as exc:
        return problem(request, exc.status, exc.detail, exc.errors)
    except NotFound as exc:
        return problem(request, 404, str(exc) or "Not found.")
    except IdempotencyKeyReused as exc:
        return problem(
            request,
            422,
            str(exc),
            [FieldError("Idempotency-Key", "names an earlier send with another request")],
        )
    except DatabaseRejected as exc:
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
    except DatabaseUnavailable as exc:
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
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        detail = {
            404: f"No route for {request.path}.",
            405: f"{request.method} is not allowed on {request.path}.",
            413: "The body is larger than this service accepts.",
        }.get(exc.status, exc.reason)
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return problem(request, exc.status, detail, headers=headers)
    except Exception:
        log.exception(
            "unhandled error", extra={"action": "http_error", "request_id": request.get(REQUEST_ID)}
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


@web.middleware
async def negotiate_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """406 for an API request whose Accept excludes JSON."""
    accept = request.headers.get("Accept")
    if accept and request.path.startswith("/api/") and not _accepts_json(accept):
        raise InvalidRequest("This API answers in JSON; the Accept header excludes it.", status=406)
    return await handler(request)


async def read_json(request: web.Request) -> dict[str, Any]:
    """The JSON object of a request body: 415 for another media type, 413 for a
    body over the limit, 400 for JSON that does not parse."""
    media = request.content_type.lower()
    if media != "application/json" and not media.endswith("+json"):
        raise InvalidRequest(
            f"The body must be application/json, not {media or 'unspecified'}.", status=415
        )
    raw = await request.read()
    return parse_json(raw)
