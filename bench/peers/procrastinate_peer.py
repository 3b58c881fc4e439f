"""procrastinate (psycopg 3) behind the interface of bench/peers/__init__.py."""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import suppress
from typing import Any

import procrastinate

from bench.loadgen import open_loop
from bench.peers import work as same
from bench.peers.common import POOL_SIZE, enqueue_for

# The main setting of a drain: jobs in flight, each fetched by its own query.
# On this machine 1 to 10 drained alike (~400-700 no-op jobs/s, noisy) and 50
# slower. The full run tries SWEEP and uses the best.
DEFAULT = 10
SWEEP = (1, 5, 10, 25)
KNOB = "concurrency"
SETTINGS = "one worker (run_worker_async), psycopg pool, LISTEN/NOTIFY"


def _app(url: str, pool_size: int = POOL_SIZE) -> procrastinate.App:
    connector = procrastinate.PsycopgConnector(conninfo=url, min_size=pool_size, max_size=pool_size)
    app = procrastinate.App(connector=connector)
    app.task(name="noop", queue="bench")(_noop)
    app.task(name=same.ENTRYPOINT, queue="bench")(_same_work)
    return app


_record: list[float] | None = None
# The same-work job, while work_same runs (a task's arguments must be JSON).
_do: same.Job | None = None


async def _noop(t: float | None = None) -> None:
    if _record is not None and t is not None:
        _record.append(time.time() - t)


async def _same_work(event: dict[str, Any]) -> None:
    assert _do is not None
    await _do(event)


async def install(url: str) -> None:
    async with _app(url, pool_size=1).open_async() as app:
        await app.schema_manager.apply_schema_async()


async def seed(url: str, n: int) -> None:
    async with _app(url, pool_size=1).open_async() as app:
        task = app.tasks["noop"]
        for start in range(0, n, 10_000):
            await task.batch_defer_async(*({} for _ in range(min(10_000, n - start))))


async def seed_work(url: str) -> int:
    """One same-work job per event waiting in the database; how many."""
    jobs = [{"event": json.loads(job)} for job in await same.event_jobs(url)]
    async with _app(url, pool_size=1).open_async() as app:
        task = app.tasks[same.ENTRYPOINT]
        for start in range(0, len(jobs), 10_000):
            await task.batch_defer_async(*jobs[start : start + 10_000])
    return len(jobs)


async def enqueue(url: str, seconds: float, concurrency: int) -> dict[str, Any]:
    async with _app(url).open_async() as app:
        task = app.tasks["noop"]

        async def one(k: int) -> None:
            await task.defer_async()

        return await enqueue_for(seconds, concurrency, one)


async def produce(url: str, rate: float, seconds: float) -> int:
    async with _app(url).open_async() as app:
        task = app.tasks["noop"]

        async def fire(k: int, scheduled: float) -> None:
            await task.defer_async(t=scheduled)

        await open_loop(rate, seconds, fire)
    return int(rate * seconds)


async def work(
    url: str, stop: asyncio.Event, record: list[float] | None, knob: int | None = None
) -> None:
    """knob overrides DEFAULT (for trying settings)."""
    global _record
    _record = record
    await _run(url, stop, knob)


async def work_same(url: str, stop: asyncio.Event, knob: int | None = None) -> None:
    """The worker of same-work jobs: knob (or DEFAULT) jobs at once, sharing
    the job's pool."""
    global _do
    async with same.same_work(url) as do:
        _do = do
        await _run(url, stop, knob)


async def _run(url: str, stop: asyncio.Event, knob: int | None) -> None:
    """A worker of concurrency knob (or DEFAULT) until stop is set."""
    concurrency = knob or DEFAULT
    async with _app(url, pool_size=concurrency + 2).open_async() as app:
        worker = asyncio.create_task(
            app.run_worker_async(
                concurrency=concurrency,
                install_signal_handlers=False,
                shutdown_graceful_timeout=5,
            )
        )
        await stop.wait()
        worker.cancel()
        with suppress(asyncio.CancelledError):
            await worker
