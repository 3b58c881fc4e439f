"""Timing a drain the same way for the service's worker and for the peers: poll
the number of unfinished jobs while the workers run.

The rate is taken between the first poll that sees progress and the last poll
that still sees work left: the jobs finished between two polls over the time
between them. Process start-up (imports, connections) falls outside that window
for every system alike, and so does the final poll's granularity. Each poll
counts the unfinished jobs (a few ms of one core for 100,000 events), so polls
are 200 ms apart: a few percent of a core, the same for every system.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg

POLL_S = 0.2


async def time_drain(url: str, remaining_sql: str, total: int, limit_s: float) -> dict[str, Any]:
    """Poll until nothing remains (or limit_s passes); the rate and timings."""
    conn = await asyncpg.connect(url)
    try:
        deadline = time.monotonic() + limit_s
        polls: list[tuple[float, int]] = []
        while time.monotonic() < deadline:
            remaining = int(await conn.fetchval(remaining_sql))
            now = time.monotonic()
            if remaining < total:
                polls.append((now, remaining))
            if remaining == 0:
                break
            await asyncio.sleep(POLL_S)
    finally:
        await conn.close()
    if not polls or polls[-1][1] != 0:
        left = polls[-1][1] if polls else total
        raise RuntimeError(f"drain incomplete after {limit_s:.0f} s: {left} of {total} left")
    (t_first, r_first), (t_end, _) = polls[0], polls[-1]
    busy = [(t, r) for t, r in polls if r > 0]
    if len(busy) >= 2 and busy[-1][0] > t_first:
        t_last, r_last = busy[-1]
        rate = (r_first - r_last) / (t_last - t_first)
    elif busy:  # what the first poll saw left finished within the next interval
        rate = r_first / max(t_end - t_first, POLL_S)
    else:  # all of it within one interval: a lower bound
        rate = total / POLL_S
    return {"rate": rate, "window_s": t_end - t_first, "polls": len(polls), "total": total}
