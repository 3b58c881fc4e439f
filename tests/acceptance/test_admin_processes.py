"""The processes' heartbeats as an operator sees them: a real `messaging worker`
and a real `messaging serve` both listed by GET /api/admin/queues, listening;
one that stops cleanly leaves the list, one that is killed goes stale."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import unused_port

from tests.support.processes import ServeProcess, WorkerProcess, terminate_quietly
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

FAST = {"MESSAGING_HEARTBEAT_SECS": "0.2", "MESSAGING_API_AUTH": "none"}


async def test_a_worker_and_a_server_appear_with_their_listeners_and_leave_when_they_stop(
    database_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    worker = WorkerProcess(database_url, tmp_path, "worker", **FAST)
    killed = WorkerProcess(database_url, tmp_path, "killed", **FAST)
    serve = ServeProcess(database_url, tmp_path, "serve", unused_port(), **FAST)
    try:
        await serve.ready()
        async with aiohttp.ClientSession() as http:

            async def listed() -> dict[int, dict[str, Any]]:
                async with http.get(f"{serve.base_url}/api/admin/queues") as response:
                    assert response.status == 200, await response.text()
                    found = (await response.json())["processes"]
                return {p["pid"]: p for p in found}

            async def all_listening() -> dict[int, dict[str, Any]] | None:
                found = await listed()
                pids = {worker.pid, killed.pid, serve.pid}
                if set(found) == pids and all(
                    p["listener_state"] == "listening" and p["fresh"] for p in found.values()
                ):
                    return found
                return None

            found = await wait_until(all_listening, within=30, interval=0.1)
            assert found[serve.pid]["kind"] == "serve"
            assert found[worker.pid]["kind"] == found[killed.pid]["kind"] == "worker"
            # Each worker beats under the processor id its claims carry.
            assert found[worker.pid]["id"].split(":")[1] == str(worker.pid)

            # Killed: no clean stop, so the row stays and goes stale (three
            # periods of 0.2 s without a beat).
            killed.kill()

            async def stale() -> bool:
                return (await listed())[killed.pid]["fresh"] is False

            await wait_until(stale, within=10, interval=0.1)

            # Stopped cleanly: the row goes at once.
            assert worker.terminate() == 0
            assert worker.pid not in await listed()
        assert serve.terminate() == 0
        rows = await db.fetch("SELECT pid FROM processes")
        assert [r["pid"] for r in rows] == [killed.pid]
    finally:
        terminate_quietly([worker, killed, serve])
