"""The access log: what every request did, at a cost the hot path can afford.

One log line per request cost about a third of the webhook path's CPU (a
LogRecord, a JSON formatter and a write each time), so by default
(MESSAGING_ACCESS_LOG=summary) a request answered below 400 is only counted, and
once every SUMMARY_INTERVAL_S one line says, per route and status, how many
requests there were and how long the slowest took. A request answered 400 or
above, and every request that raised, still gets a line of its own at once.
MESSAGING_ACCESS_LOG=all gives every request its line, for an operator tracing
requests; LOG_LEVEL above INFO leaves only the warnings and errors.

AccessLog owns its flushing task: start() launches it, close() writes what is
counted and stops it (the app's cleanup context calls both).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web

log = logging.getLogger("messaging.http")

SUMMARY_INTERVAL_S = 10.0
ACCESS_LOG_MODES = ("summary", "all")


class AccessLog:
    def __init__(self, mode: str = "summary", interval_s: float = SUMMARY_INTERVAL_S) -> None:
        self.every_request = mode == "all"
        self._interval_s = interval_s
        # (method, route, status) -> [count, slowest seconds]
        self._counts: dict[tuple[str, str, int], list[float]] = {}
        self._task: asyncio.Task[None] | None = None

    def count(self, request: web.Request, status: int, seconds: float) -> None:
        """A request answered below 400, for the next summary."""
        route = request.match_info.route.resource
        key = (request.method, route.canonical if route is not None else "", status)
        entry = self._counts.get(key)
        if entry is None:
            self._counts[key] = [1, seconds]
        else:
            entry[0] += 1
            if seconds > entry[1]:
                entry[1] = seconds

    def start(self) -> None:
        if log.isEnabledFor(logging.INFO):
            self._task = asyncio.create_task(self._run(), name="access-log")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.flush()

    def flush(self) -> None:
        """Write one summary line per route and status counted since the last."""
        counts, self._counts = self._counts, {}
        for (method, route, status), (count, slowest) in sorted(counts.items()):
            log.info(
                "%s %s %s x%d",
                method,
                route,
                status,
                count,
                extra={
                    "action": "http_summary",
                    "method": method,
                    "route": route,
                    "status": status,
                    "requests": int(count),
                    "max_duration_ms": round(slowest * 1000, 3),
                    "interval_s": self._interval_s,
                },
            )

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            self.flush()


ACCESS_LOG = web.AppKey("access_log", AccessLog)
