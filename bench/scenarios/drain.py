"""Scenario 3, drain: events pre-inserted with SQL (status received), processed
into messages and conversations by one and by two `messaging worker` processes;
and by one with the stream's log off (its insert trigger disabled), which
prices the log every message now writes (issue 12).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, nullcontext
from typing import Any

import asyncpg

from bench.context import Context
from bench.procs import MESSAGING, child_env, running
from bench.queries import query
from bench.scenarios.common import rotated, section, skipped, table, tag
from bench.scenarios.draining import time_drain
from bench.stats import median, paired_ratio

TITLE = "7. Drain by worker count"
_SEED = query("drain.sql", "seed_events")
_VACUUM = query("drain.sql", "vacuum_events")
REMAINING = query("drain.sql", "remaining_events")
_OUTCOME = query("drain.sql", "drain_outcome")

WORKER_MISSING = "worker not available (`messaging worker --help` fails on this branch)"
# The variant without the stream's log: one worker, the trigger that writes the
# log for inserted messages disabled on the scratch database.
NO_LOG = "1, stream log off"
_NO_LOG = query("drain.sql", "disable_stream_log")


async def run(ctx: Context) -> dict[str, Any]:
    if not ctx.can.worker:
        return skipped(TITLE, WORKER_MISSING)
    p = ctx.profile
    variants = [str(w) for w in p.drain_workers] + [NO_LOG]
    raw: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for repeat in range(p.repeats):
        for variant in rotated(variants, repeat):
            if variant == NO_LOG:
                result = await drain_service(ctx, p.drain_events, 1, stream_log=False)
            else:
                result = await drain_service(ctx, p.drain_events, int(variant))
            raw[variant].append(result)
            print(
                f"  drain {variant} worker(s) repeat {repeat + 1}: {result['rate']:8.0f} events/s"
                f"  ({result['window_s']:.1f} s)",
                flush=True,
            )
    return _section(ctx, raw)


async def drain_service(
    ctx: Context,
    events: int,
    workers: int,
    *,
    stream_log: bool = True,
    database_env: Callable[[str], dict[str, str]] | None = None,
    watch: Callable[[str, list[int]], AbstractAsyncContextManager[object]] | None = None,
) -> dict[str, Any]:
    """Seed `events` on a fresh database, run `workers` worker processes until
    all are processed; the rate, and a check that each event gave one message.
    With stream_log=False, messages write no stream log rows. database_env: the
    workers' database settings for the database's URL (default: DATABASE_URL
    alone); watch: entered with the database's URL and the workers' pids for as
    long as the drain is timed (section 12 reads the CPU)."""
    async with ctx.databases.migrated("drain") as url:
        await seed_events(url, events)
        if not stream_log:
            conn = await asyncpg.connect(url)
            try:
                await conn.execute(_NO_LOG)
            finally:
                await conn.close()
        env = child_env(database_env(url) if database_env else {"DATABASE_URL": url})
        async with AsyncExitStack() as stack:
            pids = []
            for i in range(workers):
                worker = await stack.enter_async_context(
                    running(f"drain_worker_{i}", [MESSAGING, "worker"], env)
                )
                pids.append(worker.pid)
            async with watch(url, pids) if watch else nullcontext():
                result = await time_drain(url, REMAINING, events, limit_s=60 + events / 200)
        outcome = await checked_outcome(url, events)
    return result | outcome


async def seed_events(url: str, events: int) -> None:
    """`events` webhook events as the API stores them, then the table at rest:
    what every drain of the service's rows starts from (the peers' same-work
    jobs and the SQL-only limit too)."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(_SEED, events, tag())
        await conn.execute(_VACUUM)
    finally:
        await conn.close()


async def checked_outcome(url: str, events: int) -> dict[str, Any]:
    """What a drain of `events` left, after checking that every event was
    processed into one message, each counted once in its conversation."""
    conn = await asyncpg.connect(url)
    try:
        outcome = dict(await conn.fetchrow(_OUTCOME) or {})
    finally:
        await conn.close()
    if outcome["not_processed"] != 0 or {outcome["messages"], outcome["counted"]} != {events}:
        raise RuntimeError(f"drain of {events} events left {outcome}")
    return outcome


def _section(ctx: Context, raw: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    p = ctx.profile
    one = [r["rate"] for r in raw[str(p.drain_workers[0])]]
    rows, summary = [], {}
    for workers in p.drain_workers:
        rates = [r["rate"] for r in raw[str(workers)]]
        scaling = paired_ratio(rates, one)
        summary[str(workers)] = {"events_per_s": median(rates), "vs_one_worker": scaling}
        conversations = raw[str(workers)][0]["conversations"]
        rows.append([workers, median(rates), scaling, conversations])
    without = [r["rate"] for r in raw.get(NO_LOG, [])]
    if without:
        # The ratio column reads: one worker with no log against one with it.
        summary[NO_LOG] = {
            "events_per_s": median(without),
            "vs_one_worker": paired_ratio(without, one),
        }
        rows.append([NO_LOG, median(without), paired_ratio(without, one), "-"])
    return section(
        TITLE,
        what=(
            f"{p.drain_events:,} events inserted with SQL (bench/sql/drain.sql, 1,000 senders), "
            "then `messaging worker` processes started (default MESSAGING_BATCH_SIZE); "
            "events/s from polling the unprocessed count every 200 ms "
            f"(bench/scenarios/draining.py); {p.repeats} repeats, fresh database each; medians. "
            "Checked after each run: every event processed, one message each. "
            f"'{NO_LOG}': one worker with the trigger that writes the stream's log for each "
            "inserted message disabled (what the drain cost before issue 12's log)."
        ),
        tables=[
            table(
                "Drain",
                ["worker processes", "events/s (abs)", "vs one worker (ratio)", "conversations"],
                rows,
            )
        ],
        raw=raw,
        summary=summary,
    )
