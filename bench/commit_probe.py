"""What one commit costs on this machine at this moment: single-row INSERTs,
each its own transaction, one after another over one asyncpg connection.

The latency targets are ratios to a bare 202; this figure lets a reader of the
absolute numbers tell the database's share (a commit waits for its WAL flush)
from the service's.
"""

from __future__ import annotations

import time

import asyncpg

from bench.queries import query
from bench.stats import percentile

_CREATE = query("latency.sql", "create_commit_probe")
_INSERT = query("latency.sql", "insert_commit_probe")
ROWS = 200
# The first inserts prepare the statement and warm the connection.
WARMUP_ROWS = 20


async def one_row_commits(database_url: str, rows: int = ROWS) -> dict[str, float]:
    """p50, p99 and max, in ms, of `rows` one-row commits in a fresh table of
    database_url."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(_CREATE)
        times = []
        for i in range(WARMUP_ROWS + rows):
            t0 = time.perf_counter()
            await conn.execute(_INSERT, f"probe-{i}")
            if i >= WARMUP_ROWS:
                times.append((time.perf_counter() - t0) * 1000)
    finally:
        await conn.close()
    return {
        "p50_ms": percentile(times, 50),
        "p99_ms": percentile(times, 99),
        "max_ms": max(times),
    }
