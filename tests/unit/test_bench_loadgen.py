"""The benchmark's open-loop client is honest: each request is started when it
falls due (never created ahead), never early, and the warm-up second is sent
but flagged."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from bench.loadgen import open_loop, run_open
from tests.support.aliases import ServerFactory


async def test_each_request_is_started_when_due_and_not_before() -> None:
    started: list[tuple[int, float, int]] = []

    async def fire(k: int, scheduled: float) -> None:
        started.append((k, time.time() - scheduled, len(asyncio.all_tasks())))
        await asyncio.sleep(0.05)

    await open_loop(200, 0.25, fire)
    assert [k for k, _, _ in started] == list(range(50))
    assert min(lag for _, lag, _ in started) > -0.001  # never early
    # Created as they fall due: about rate x 0.05 s in flight, never all 50 at once.
    assert max(tasks for _, _, tasks in started) < 40


async def test_warm_up_requests_are_sent_and_flagged(aiohttp_server: ServerFactory) -> None:
    async def accept(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"id": 1}, status=202)

    app = web.Application()
    app.router.add_post("/hook", accept)
    server = await aiohttp_server(app)
    records = await run_open(str(server.make_url("/hook")), 100, 0.2, "t", warmup=0.1)
    assert [r["warmup"] for r in records] == [True] * 10 + [False] * 20
    assert all(
        r["status"] == 202 and r["done"] >= r["sent"] >= r["scheduled"] - 0.001 for r in records
    )
