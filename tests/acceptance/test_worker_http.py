"""A standalone `messaging worker` with MESSAGING_WORKER_PORT serves /healthz,
/readyz and /metrics, its own worker's metrics among them, until it stops; and
logs in JSON when LOG_FORMAT is unset and standard error is not a terminal."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import unused_port

from tests.support.arrange import insert_sms
from tests.support.metrics import Samples, parse
from tests.support.processes import WorkerProcess
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


async def test_worker_serves_health_readiness_and_its_metrics(
    database_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    port = unused_port()
    base = f"http://127.0.0.1:{port}"
    # LOG_FORMAT empty: its default, for an output that is a file.
    worker = WorkerProcess(
        database_url, tmp_path, "worker", MESSAGING_WORKER_PORT=str(port), LOG_FORMAT=""
    )
    try:
        async with aiohttp.ClientSession() as http:

            async def ready() -> bool:
                try:
                    async with http.get(f"{base}/readyz") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    assert worker.process.poll() is None, worker.output()[-3000:]
                    return False

            await wait_until(ready, within=30, interval=0.1)
            async with http.get(f"{base}/readyz") as response:
                checks = (await response.json())["checks"]
            assert checks["database"]["ok"] and checks["migrations"]["ok"]
            assert checks["listener"]["ok"] and checks["listener"]["connected"]
            async with http.get(f"{base}/healthz") as response:
                assert response.status == 200

            async def scrape() -> Samples:
                async with http.get(f"{base}/metrics") as response:
                    assert response.status == 200
                    return parse(await response.text())

            await insert_sms(db, 3)

            async def processed() -> Samples | None:
                samples = await scrape()
                return samples if samples.total("messaging_events_processed_total") == 3 else None

            samples = await wait_until(processed, within=10, interval=0.1)
            assert samples.value("messaging_listener_up") == 1
        assert worker.terminate() == 0
        lines = [json.loads(line) for line in worker.output().splitlines() if line.strip()]
        assert any(
            line.get("action") == "listening" and str(port) in line["message"] for line in lines
        )
    finally:
        worker.stop_quietly()
