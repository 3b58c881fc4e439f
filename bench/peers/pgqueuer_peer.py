"""pgqueuer (asyncpg driver) behind the interface of bench/peers/__init__.py."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta
from typing import Any

import asyncpg
from pgqueuer import AsyncpgDriver, AsyncpgPoolDriver, Job, Queries, QueueManager
from pgqueuer.types import QueueExecutionMode

from bench.loadgen import open_loop
from bench.peers import work as same
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


async def seed_work(url: str) -> int:
    """One same-work job per event waiting in the database; how many."""
    jobs = [job.encode() for job in await same.event_jobs(url)]
    conn = await asyncpg.connect(url)
    try:
        queries = Queries(AsyncpgDriver(conn))
        for start in range(0, len(jobs), 10_000):
            chunk = jobs[start : start + 10_000]
            await queries.enqueue([same.ENTRYPOINT] * len(chunk), chunk, [0] * len(chunk))
    finally:
        await conn.close()
    return len(jobs)


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

        await _run(qm, stop, knob)
    finally:
        await conn.close()


async def work_same(url: str, stop: asyncio.Event, knob: int | None = None) -> None:
    """The worker of same-work jobs: each job in a task of its own (pgqueuer's
    default, no concurrency limit), sharing the job's pool."""
    conn = await asyncpg.connect(url)
    try:
        async with same.same_work(url) as do:
            qm = QueueManager(Queries(AsyncpgDriver(conn)))

            @qm.entrypoint(same.ENTRYPOINT)
            async def same_work(job: Job) -> None:
                assert job.payload is not None
                await do(json.loads(job.payload))

            await _run(qm, stop, knob)
    finally:
        await conn.close()


async def _run(qm: QueueManager, stop: asyncio.Event, knob: int | None) -> None:
    """Run qm at batch size knob (or DEFAULT) until stop is set."""

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
