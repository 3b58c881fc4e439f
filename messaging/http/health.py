"""Liveness, readiness and metrics.

GET /healthz  the process is up (never touches the database)
GET /readyz   the database answers and every migration is applied
GET /metrics  Prometheus exposition (aioprometheus)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from messaging.errors import DatabaseFailed, DatabaseUnavailable
from messaging.http.keys import METRICS, POOL
from messaging.http.responses import json_response
from messaging.store.db import connection, ping
from messaging.store.schema_migrations import pending_migrations

# Further readiness checks registered by other parts of the app (the worker's
# listener), each answering (ok, details).
ReadinessCheck = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]
READINESS_CHECKS = web.AppKey("readiness_checks", list[tuple[str, ReadinessCheck]])


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    checks: dict[str, Any] = {}
    ready = True
    try:
        async with connection(request.app[POOL]) as conn:
            await ping(conn)
            pending = await pending_migrations(conn)
        checks["database"] = {"ok": True}
        checks["migrations"] = {"ok": not pending, "pending": pending}
        ready = not pending
    except (DatabaseUnavailable, DatabaseFailed) as exc:
        checks["database"] = {"ok": False, "error": str(exc)}
        ready = False
    for name, check in request.app.get(READINESS_CHECKS, []):
        ok, details = await check()
        checks[name] = {"ok": ok, **details}
        ready = ready and ok
    return json_response(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status=200 if ready else 503,
    )


async def metrics(request: web.Request) -> web.Response:
    content, headers = request.app[METRICS].render(request.headers.getall("Accept", []))
    return web.Response(body=content, headers=headers)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/healthz", healthz),
        web.get("/readyz", readyz),
        web.get("/metrics", metrics),
    ]
