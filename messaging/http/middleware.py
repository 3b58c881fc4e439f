"""The one middleware of the API, kept to one frame on the hot path: request ids,
the Accept check, every exception through problems.problem_for, and the access
log (access_log.py: a line per refused request, a summary of the rest)."""

from __future__ import annotations

import itertools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from messaging.errors import InvalidRequest
from messaging.http.access_log import ACCESS_LOG, AccessLog
from messaging.http.problems import REQUEST_ID, problem_for

log = logging.getLogger("messaging.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REQUEST_ID_HEADER = "X-Request-Id"

# Request ids: a random prefix per process and a counter, unique across
# processes and restarts, and cheaper on the hot path than a uuid4 per request.
_ID_PREFIX = secrets.token_hex(6)
_id_counter = itertools.count(1)
# Where an app keeps no AccessLog (the mock providers, alone or mounted): a line
# per request.
_EVERY_REQUEST = AccessLog("all")


@web.middleware
async def edge(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The one middleware of the API, kept to one frame on the hot path:

    - a request id (X-Request-Id propagated, or generated), echoed in the response;
    - 406 for an /api/ request whose Accept excludes JSON;
    - every exception mapped to a problem+json response (problem_for);
    - the access log, when INFO is enabled: a line for a request answered 400
      or above (or every request, MESSAGING_ACCESS_LOG=all); the others counted
      for the periodic summary.
    """
    request_id = request.headers.get(REQUEST_ID_HEADER, "")[:128] or (
        f"{_ID_PREFIX}-{next(_id_counter):06x}"
    )
    request[REQUEST_ID] = request_id
    started = time.perf_counter()
    try:
        accept = request.headers.get("Accept")
        if accept and request.path.startswith("/api/") and not _accepts(accept, request.path):
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
        duration = time.perf_counter() - started
        access = request.app.get(ACCESS_LOG, _EVERY_REQUEST)
        if response.status < 400 and not access.every_request:
            access.count(request, response.status, duration)
        else:
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
                    "duration_ms": round(duration * 1000, 3),
                },
            )
    return response


# The event stream answers text/event-stream (and its errors in JSON).
_EVENT_STREAM_PATH = "/api/events"
_EVENT_STREAM_TYPES = ("text/event-stream", "text/*")


def _accepts(accept: str, path: str) -> bool:
    """Whether the Accept header admits what the path answers: JSON everywhere,
    and an event stream on the stream's path."""
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
            or (path == _EVENT_STREAM_PATH and media in _EVENT_STREAM_TYPES)
        ):
            return True
    return False
