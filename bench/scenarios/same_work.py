"""The drains of scenario 4 that do the service's work without the service's
worker: a peer (pgqueuer, procrastinate) running one same-work job per event
(bench/peers/work.py), and the physical limit, the same rows written by SQL
alone (bench/sql/sql_limit.sql).

Each starts as the service's drain does (bench/scenarios/drain.py): a fresh
migrated database, the events inserted in bulk, the table at rest; each is
timed as every drain is (bench/scenarios/draining.py), on the events left to
process, and checked the same way afterwards (every event processed, one
message each, counted once in its conversation).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg

from bench.context import Context
from bench.procs import run_command, running
from bench.queries import query
from bench.scenarios.drain import REMAINING, checked_outcome, seed_events
from bench.scenarios.draining import time_drain
from bench.scenarios.peer_steps import command, install

_CREATE_LIMIT = query("sql_limit.sql", "create_procedure")
_CALL_LIMIT = query("sql_limit.sql", "call_procedure")
# Events per batch (and transaction) of the SQL-only limit, as in the call.
LIMIT_BATCH = 500


async def peer_work_drain(ctx: Context, peer: str, events: int, knob: int) -> dict[str, Any]:
    """`events` events, one same-work job each in the peer's queue, drained by
    one worker process of the peer at setting knob."""
    async with ctx.databases.migrated(f"{peer}_work") as url:
        await seed_events(url, events)
        await install(peer, url)
        code, out = await run_command(command(peer, "seed", url, "--job=work"), limit_s=600)
        if code != 0:
            raise RuntimeError(f"{peer} seed of same-work jobs failed:\n{out[-2000:]}")
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(query("peers.sql", f"{peer}_vacuum"))
        finally:
            await conn.close()
        worker = command(peer, "work", url, "--job=work", f"--knob={knob}")
        async with running(f"{peer}_work_worker", worker):
            result = await time_drain(url, REMAINING, events, limit_s=60 + events / 50)
        outcome = await checked_outcome(url, events)
    return result | outcome


async def sql_limit_drain(ctx: Context, events: int) -> dict[str, Any]:
    """`events` events processed by one CALL of the SQL-only procedure, timed
    from outside while it runs (and its whole call, for the record)."""
    async with ctx.databases.migrated("sql_limit") as url:
        await seed_events(url, events)
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(_CREATE_LIMIT)
            call = asyncio.create_task(_timed_call(conn))
            try:
                result = await time_drain(url, REMAINING, events, limit_s=60 + events / 200)
            finally:
                call_s = await call
        finally:
            await conn.close()
        outcome = await checked_outcome(url, events)
    return result | outcome | {"call_s": call_s, "call_rate": events / call_s}


async def _timed_call(conn: asyncpg.Connection) -> float:
    started = time.monotonic()
    await conn.execute(_CALL_LIMIT)
    return time.monotonic() - started
