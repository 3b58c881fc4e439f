"""The two claim shapes on the messages table, timed back to back: the locked ids
joined to the UPDATE as a CTE, and handed to it as one array (what both queues'
claims use). Issue 9 asked for one claim shape, the faster one, measured.

python -m bench.claim_shapes DATABASE_URL   (a scratch database, migrated)
Each round requeues 10,000 sends, vacuums, and claims them 500 at a time; six
rounds, the shapes in alternating order; the median of each round's medians.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

import asyncpg

from bench.queries import query
from messaging.store.queries import query as service_query

SENDS = 10_000
BATCH = 500
SHAPES = {
    "cte": query("claim_shapes.sql", "claim_sends_cte"),
    "array": service_query("messages.sql", "claim_sends"),
}


async def main(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        if not await conn.fetchval("SELECT count(*) FROM messages"):
            await conn.execute(query("claim_shapes.sql", "seed_sends"), SENDS)
        rounds: dict[str, list[float]] = {name: [] for name in SHAPES}
        for i in range(6):
            order = list(SHAPES) if i % 2 == 0 else list(reversed(SHAPES))
            for name in order:
                await conn.execute(query("claim_shapes.sql", "requeue_sends"))
                await conn.execute("VACUUM ANALYZE messages")
                times = []
                for _ in range(SENDS // BATCH):
                    started = time.perf_counter()
                    claimed = await conn.fetch(SHAPES[name], "bench", BATCH)
                    times.append((time.perf_counter() - started) * 1000)
                    assert len(claimed) == BATCH
                rounds[name].append(statistics.median(times))
        for name, medians in rounds.items():
            print(f"{name:6} {statistics.median(medians):.2f} ms per {BATCH}-row claim")
    finally:
        await conn.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
