"""What both peers' drivers share: timed one-per-transaction enqueueing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.stats import latency_summary

# Connections a peer's producer may use: the service's default pool size
# (MESSAGING_POOL_SIZE), so that both sides put the same number of concurrent
# transactions on the server.
POOL_SIZE = 10


async def enqueue_for(
    seconds: float, concurrency: int, enqueue_one: Callable[[int], Awaitable[None]]
) -> dict[str, Any]:
    """concurrency tasks call enqueue_one (one job, one transaction) back to back
    for `seconds`; returns jobs/s and the per-call latency."""
    deadline = time.monotonic() + seconds
    latencies_ms: list[float] = []
    counter = iter(range(10**9))

    async def producer() -> None:
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            await enqueue_one(next(counter))
            latencies_ms.append((time.perf_counter() - t0) * 1000)

    started = time.monotonic()
    await asyncio.gather(*(producer() for _ in range(concurrency)))
    elapsed = time.monotonic() - started
    return {"jobs": len(latencies_ms), "jobs_per_s": len(latencies_ms) / elapsed} | {
        f"enqueue_{k}": v for k, v in latency_summary(latencies_ms).items() if k != "n"
    }
