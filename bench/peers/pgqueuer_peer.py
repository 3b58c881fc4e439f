"""pgqueuer (asyncpg driver) behind the interface of bench/peers/__init__.py."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import asyncpg
from pgqueuer import AsyncpgDriver, AsyncpgPoolDriver, Job, Queries, QueueManager
from pgqueuer.types import QueueExecutionMode

from bench.loadgen import open_loop
from bench.peers.common import POOL_SIZE, enqueue_for

ENTRYPOINT = "noop"
# The main setting of a drain: jobs dequeued per query. 10 is pgqueuer's
# default; on this machine 500 to 1000 drained fastest (10: ~4k/s, 100: ~11k/s,
# 500-2000: 12k-17k/s). The full run tries SWEEP and uses the best.
DEFAULT = 1000
SWEEP = (100, 500, 1000, 2000)
KNOB = "batch_size"
SETTINGS = "one QueueManager over one asyncpg connection, LISTEN/NOTIFY"


async def install(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await Queries(AsyncpgDriver(conn)).install()
    finally:
        await conn.close()


async def seed(url: str, n: int) -> None:
    conn = await asyncpg.connect(url)
    try:
        queries = Queries(AsyncpgDriver(conn))
        for start in range(0, n, 10_000):
            size = min(10_000, n - start)
            await queries.enqueue([ENTRYPOINT] * size, [None] * size, [0] * size)
    finally:
        await conn.close()


async def enqueue(url: str, seconds: float, concurrency: int) -> dict[str, Any]:
    async with asyncpg.create_pool(url, min_size=POOL_SIZE, max_size=POOL_SIZE) as pool:
        queries = Queries(AsyncpgPoolDriver(pool))

        async def one(k: int) -> None:
            await queries.enqueue(ENTRYPOINT, None)

        return await enqueue_for(seconds, concurrency, one)


async def produce(url: str, rate: float, seconds: float) -> int:
    async with asyncpg.create_pool(url, min_size=POOL_SIZE, max_size=POOL_SIZE) as pool:
        queries = Queries(AsyncpgPoolDriver(pool))

        async def fire(k: int, scheduled: float) -> None:
            await queries.enqueue(ENTRYPOINT, repr(scheduled).encode())

        await open_loop(rate, seconds, fire)
    return int(rate * seconds)


async def work(
    url: str, stop: asyncio.Event, record: list[float] | None, knob: int | None = None
) -> None:
    """knob overrides DEFAULT (for trying settings)."""
    conn = await asyncpg.connect(url)
    try:
        qm = QueueManager(Queries(AsyncpgDriver(conn)))

        @qm.entrypoint(ENTRYPOINT)
        async def noop(job: Job) -> None:
            if record is not None and job.payload:
                record.append(time.time() - float(job.payload))

        async def stop_when_asked() -> None:
            await stop.wait()
            qm.shutdown.set()

        stopper = asyncio.create_task(stop_when_asked())
        try:
            await qm.run(
                batch_size=knob or DEFAULT,
                mode=QueueExecutionMode.continuous,
                dequeue_timeout=timedelta(seconds=1),
            )
        finally:
            stopper.cancel()
    finally:
        await conn.close()
