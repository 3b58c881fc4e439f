"""Scenario 10, flat cost as the tables grow (issue 13): ingest, drain and the
two list reads against a database with the tables nearly empty ("small") and
against one with months of history ("large": 10,000,000 processed events,
10,500,000 messages, 100,000 conversations in the full profile; 1,000,000
events in the quick one), in the same run, the two in rotating order.

The history is bench/sql/growth.sql's, written by SQL (fill_history) once per
run into a database of its own, then copied for each repeat (CREATE DATABASE
... STRATEGY FILE_COPY), so that every repeat starts from the same rows. The
small database is the same generator at 10,000 events in 100 conversations:
every conversation of both holds 105 messages, so a conversation's page of
messages is the same page in both.

In each repeat and database:

1. reads: `messaging serve` with default settings (as `make run` starts it,
   with an API key, which a database of one's own asks for) answers GET
   /api/conversations (the first page, then the middle one) and GET
   /api/conversations/{id}/messages (a conversation of 105 messages, first
   page), each from wrk at READ_CONNECTIONS connections (the service's
   default MESSAGING_MAX_CONCURRENT_READS: a bounded load, nothing waiting its
   turn), after a second of warm-up;
2. ingest: the same service, webhooks from wrk at 64 connections, closed loop,
   as the ingest scenario drives it (its load()); then the worker finishes the
   backlog before anything else runs;
3. drain: the service stopped, the drain scenario's events inserted by SQL
   (its seed_events(), VACUUM included), and one `messaging worker` times the
   drain as the drain scenario does (time_drain).

Last, autovacuum (the migration 20261206120200_autovacuum_hot_tables): two more
copies of the large database, one as migrated and one with those settings
reset to PostgreSQL's defaults, each drained for several rounds by one worker
(events inserted by SQL, no VACUUM between rounds, each round at least
VACUUM_ROUND_S long so that autovacuum's one-minute naptime comes round). After
each round: the table's dead rows and autovacuum's count
(pg_stat_user_tables), and what a claim costs on the empty queue (EXPLAIN
ANALYZE of the service's claim_events, rolled back): the walk past dead index
entries that a vacuum would have removed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from bench.context import Context
from bench.procs import MESSAGING, ROOT, child_env, run_command, running
from bench.queries import query
from bench.scenarios.common import rotated, section, service, skipped, table, tag
from bench.scenarios.drain import REMAINING, WORKER_MISSING, seed_events
from bench.scenarios.draining import time_drain
from bench.scenarios.ingest import PATH, load
from bench.scenarios.stream import read_key
from bench.stats import median, paired_ratio
from messaging.store.queries import query as service_query

TITLE = "10. Flat cost as the tables grow"

_START = query("growth.sql", "history_start")
_SETUP = query("growth.sql", "setup")
_PLAN = query("growth.sql", "plan")
_REPLICA_ROLE = query("growth.sql", "replica_role")
_RECORD_INDEXES = query("growth.sql", "record_secondary_indexes")
_DROP_INDEXES = query("growth.sql", "drop_secondary_indexes")
_FILL_EVENTS = query("growth.sql", "fill_events")
_FILL_MESSAGES = query("growth.sql", "fill_messages")
_FILL_CONVERSATIONS = query("growth.sql", "fill_conversations")
_SEQUENCES = query("growth.sql", "advance_sequences")
_RESTORE_INDEXES = query("growth.sql", "restore_secondary_indexes")
_VACUUM_EVENTS = query("growth.sql", "vacuum_events")
_VACUUM_MESSAGES = query("growth.sql", "vacuum_messages")
TABLE_SIZES = query("growth.sql", "table_sizes")
_COPY = query("growth.sql", "copy_database")
_DROP = query("admin.sql", "drop_database")
_READ_TARGETS = query("growth.sql", "read_targets")
_LAST_MESSAGE = query("growth.sql", "last_message_id")
_MESSAGES_AFTER = query("growth.sql", "messages_after")
_ACTIVITY = query("growth.sql", "table_activity")
_RESET_AUTOVACUUM = query("growth.sql", "reset_autovacuum")
_SEED = query("drain.sql", "seed_events")
# The claim the worker runs, explained as it runs (the service's own text).
# EXPLAIN takes no parameters of its own: this is the one statement the bench
# prefixes, and only with this constant.
_EXPLAIN = "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "
_CLAIM = service_query("inbound_events.sql", "claim_events")
_LIST_CONVERSATIONS = service_query("conversations.sql", "list_conversations")
READ_LUA = ROOT / "bench" / "wrk" / "read.lua"

# The sessions that share the generator's work (one per core of the 2-core
# machines this runs on), by the tables whose indexes each rebuilds.
SESSION_TABLES = (["inbound_events"], ["messages", "conversations"])
# The service's default MESSAGING_MAX_CONCURRENT_READS: reads at once.
READ_CONNECTIONS = 4
PAGE_SIZE = 50
# How long the worker may take to finish what an ingest left.
BACKLOG_LIMIT_S = 120.0
POLL_S = 0.2
# Issue 13's targets.
THROUGHPUT_TARGET = 0.90
READ_P99_TARGET = 2.0
SMALL, LARGE = "small", "large"


@dataclass(frozen=True)
class Sizes:
    """What the profile generates and measures (bench/context.py's Profile
    carries the other scenarios')."""

    large_events: int
    large_conversations: int
    small_events: int
    small_conversations: int
    read_s: int
    autovacuum_rounds: int
    autovacuum_round_events: int
    # Each autovacuum round lasts at least this long (autovacuum_naptime is 60 s).
    autovacuum_round_s: float


SIZES = {
    "full": Sizes(10_000_000, 100_000, 10_000, 100, 5, 6, 100_000, 25.0),
    "quick": Sizes(1_000_000, 10_000, 10_000, 100, 2, 3, 30_000, 0.0),
}


async def run(ctx: Context) -> dict[str, Any]:
    if not ctx.can.worker:
        return skipped(TITLE, WORKER_MISSING)
    p, sizes = ctx.profile, SIZES[ctx.profile.name]
    history: dict[str, Any] = {}
    raw: dict[str, list[dict[str, Any]]] = {SMALL: [], LARGE: []}
    async with (
        ctx.databases.migrated("growth_small") as small,
        ctx.databases.migrated("growth_large") as large,
    ):
        sources = {SMALL: small, LARGE: large}
        for variant, events, conversations in (
            (SMALL, sizes.small_events, sizes.small_conversations),
            (LARGE, sizes.large_events, sizes.large_conversations),
        ):
            timings = await fill_history(sources[variant], events, conversations)
            history[variant] = {
                "events": events,
                "conversations": conversations,
                "seconds": timings,
                "tables": await _table_sizes(sources[variant]),
            }
            print(f"  growth: {variant} history of {events:,} events in {timings}", flush=True)
        for repeat in range(p.repeats):
            for variant in rotated([SMALL, LARGE], repeat):
                async with copied(ctx, sources[variant], variant) as (url, copy_s):
                    result = await _measure(ctx, url, sizes) | {"copy_s": copy_s}
                raw[variant].append(result)
                print(f"  growth {variant:5} repeat {repeat + 1}: {_line(result)}", flush=True)
        vacuum = await _autovacuum(ctx, large, sizes)
    return _section(ctx, sizes, history, raw, vacuum)


# -- the history ---------------------------------------------------------------


async def fill_history(
    url: str, events: int, conversations: int, *, drop_indexes: bool = True
) -> dict[str, float]:
    """Write bench/sql/growth.sql's history of `events` processed events (a
    multiple of 20 and of `conversations`) into the migrated database at url,
    then vacuum and analyze it. Returns the seconds each step took.
    drop_indexes=False keeps the secondary indexes during the load (slower)."""
    if events % 20 or events % conversations:
        raise ValueError("events must be a multiple of 20 and of conversations")
    messages = events + events // 20
    conns = [await asyncpg.connect(url) for _ in SESSION_TABLES]
    timings: dict[str, float] = {}

    async def step(name: str, *work: Any) -> None:
        started = time.monotonic()
        await asyncio.gather(*work)
        timings[name] = time.monotonic() - started

    try:
        start = await conns[0].fetchrow(_START)
        assert start is not None
        for conn, tables in zip(conns, SESSION_TABLES, strict=True):
            await conn.execute(_SETUP)
            await conn.execute(_PLAN, events, conversations, *start.values())
            if drop_indexes:
                await conn.execute(_RECORD_INDEXES, tables)
                await conn.execute(_DROP_INDEXES)
        await step("events", *_split(conns, _FILL_EVENTS, events))
        await step("messages", *_split(conns, _FILL_MESSAGES, messages))
        # Not in replica role: the triggers on conversations (the count of
        # them that list reads sum) must see these rows as any insert's.
        await step("conversations", _in_transaction(conns[0], _FILL_CONVERSATIONS))
        await conns[0].execute(_SEQUENCES)
        if drop_indexes:
            await step("indexes", *(_in_transaction(conn, _RESTORE_INDEXES) for conn in conns))
        await step(
            "vacuum_analyze", conns[0].execute(_VACUUM_EVENTS), conns[1].execute(_VACUUM_MESSAGES)
        )
    finally:
        for conn in conns:
            await conn.close()
    timings["total"] = sum(timings.values())
    return timings


def _split(conns: list[asyncpg.Connection], sql: str, total: int) -> list[Any]:
    """The range 1..total in one contiguous part per session, each written in
    its own transaction, all at once."""
    bounds = [total * i // len(conns) for i in range(len(conns) + 1)]
    return [
        _in_replica_role(conn, sql, first + 1, last)
        for conn, first, last in zip(conns, bounds, bounds[1:], strict=False)
    ]


async def _in_replica_role(conn: asyncpg.Connection, sql: str, *args: Any) -> None:
    async with conn.transaction():
        await conn.execute(_REPLICA_ROLE)
        await conn.execute(sql, *args)


async def _in_transaction(conn: asyncpg.Connection, sql: str) -> None:
    async with conn.transaction():
        await conn.execute(sql)


async def _table_sizes(url: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(url)
    try:
        return [dict(row) for row in await conn.fetch(TABLE_SIZES)]
    finally:
        await conn.close()


@asynccontextmanager
async def copied(ctx: Context, source_url: str, label: str) -> AsyncIterator[tuple[str, float]]:
    """A copy of the database at source_url (no session may be open on it) for
    the block; yields its URL and the seconds the copy took."""
    source = urlsplit(source_url).path.lstrip("/")
    name = f"bench_growth_{tag()}_{label}"
    started = time.monotonic()
    await _admin(ctx, _COPY, name, source)
    copy_s = time.monotonic() - started
    try:
        yield ctx.server.url_for(name), copy_s
    finally:
        await _admin(ctx, _DROP, name)


async def _admin(ctx: Context, builder: str, *names: str) -> None:
    """Run the statement that builder (a SELECT format(...)) answers, on the
    server's maintenance database."""
    conn = await asyncpg.connect(ctx.server.url)
    try:
        await conn.execute(await conn.fetchval(builder, *names))
    finally:
        await conn.close()


# -- one repeat on one database -------------------------------------------------


async def _measure(ctx: Context, url: str, sizes: Sizes) -> dict[str, Any]:
    p = ctx.profile
    key = await read_key(url)
    conn = await asyncpg.connect(url)
    try:
        targets = await conn.fetchrow(_READ_TARGETS)
    finally:
        await conn.close()
    assert targets is not None
    middle = targets["conversations"] // PAGE_SIZE // 2 + 1
    reads = {
        "conversations_first": f"/api/conversations?page=1&pageSize={PAGE_SIZE}",
        "conversations_middle": f"/api/conversations?page={middle}&pageSize={PAGE_SIZE}",
        "messages": f"/api/conversations/{targets['id']}/messages?page=1&pageSize={PAGE_SIZE}",
    }
    result: dict[str, Any] = {
        "conversations": targets["conversations"],
        "middle_page": middle,
        "messages_in_conversation": targets["message_count"],
    }
    async with service(ctx, url, "growth_serve", worker=True, defaults=True) as base:
        for name, path in reads.items():
            await read_load(ctx, base + path, key, 1)
            result[name] = await read_load(ctx, base + path, key, sizes.read_s)
        result["list_plans"] = {
            "first": await list_plan(url, 0),
            "middle": await list_plan(url, (middle - 1) * PAGE_SIZE),
        }
        await load(ctx, base + PATH, p.warmup_s, tag())
        await backlog_drained(url)
        result["ingest"] = await load(ctx, base + PATH, p.ingest_s, tag())
        result["ingest"]["backlog_drained_s"] = await backlog_drained(url)
    result["drain"] = await _drain(url, p.drain_events)
    return result


async def list_plan(url: str, offset: int) -> dict[str, float]:
    """Where a page of GET /api/conversations spends its time in the database:
    the service's list_conversations explained as it runs (the second run, the
    first warms the cache): its execution time, the time of the total (the
    plan's Aggregate) and of the walk of the page's index."""
    conn = await asyncpg.connect(url)
    try:
        for _ in range(2):
            text = await conn.fetchval(_EXPLAIN + _LIST_CONVERSATIONS, PAGE_SIZE, offset)
    finally:
        await conn.close()
    plan = json.loads(text)[0]
    out = {"execution_ms": plan["Execution Time"], "count_ms": 0.0, "page_ms": 0.0}
    for node in _nodes(plan["Plan"]):
        if node.get("Node Type") == "Aggregate" and "Plans" in node:
            out["count_ms"] = max(out["count_ms"], node["Actual Total Time"])
        if node.get("Index Name") == "conversations_last_activity_idx":
            out["page_ms"] = node["Actual Total Time"]
            out["page_rows_walked"] = node["Actual Rows"]
    return out


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(n for child in plan.get("Plans", []) for n in _nodes(child))]


async def read_load(ctx: Context, url: str, api_key: str, seconds: int) -> dict[str, Any]:
    """GETs of url from wrk at READ_CONNECTIONS connections (closed loop) for
    `seconds`; its rate and latency percentiles."""
    if not ctx.can.wrk:
        raise RuntimeError("the list reads are measured with wrk, which was not found")
    argv = [ctx.can.wrk, "-t1", f"-c{READ_CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s"]
    argv += ["-s", str(READ_LUA), url, "--", api_key]
    code, out = await run_command(argv, limit_s=seconds + 60)
    lines = [line for line in out.splitlines() if line.startswith("WRK_JSON ")]
    if code != 0 or not lines:
        raise RuntimeError(f"wrk failed ({code}):\n{out[-2000:]}")
    s = json.loads(lines[-1].removeprefix("WRK_JSON "))
    errors = s["status_errors"] + s["socket_errors"] + s["timeouts"]
    if errors:
        raise RuntimeError(f"{errors} of {s['requests']} reads of {url} failed")
    return {
        "requests": s["requests"],
        "rps": s["requests"] / (s["duration_us"] / 1e6),
        "p50_ms": s["p50_us"] / 1000,
        "p99_ms": s["p99_us"] / 1000,
        "max_ms": s["max_us"] / 1000,
    }


async def backlog_drained(url: str) -> float:
    """Seconds until no event is left to process (bounded by BACKLOG_LIMIT_S)."""
    conn = await asyncpg.connect(url)
    try:
        started = time.monotonic()
        while int(await conn.fetchval(REMAINING)) > 0:
            if time.monotonic() - started > BACKLOG_LIMIT_S:
                raise RuntimeError(f"the backlog did not drain within {BACKLOG_LIMIT_S:.0f} s")
            await asyncio.sleep(POLL_S)
        return time.monotonic() - started
    finally:
        await conn.close()


async def _drain(url: str, events: int) -> dict[str, Any]:
    """The drain scenario's drain on this database: its events, one worker."""
    conn = await asyncpg.connect(url)
    try:
        before = int(await conn.fetchval(_LAST_MESSAGE))
    finally:
        await conn.close()
    started = time.monotonic()
    await seed_events(url, events)
    seed_s = time.monotonic() - started
    env = child_env({"DATABASE_URL": url})
    async with running("growth_worker", [MESSAGING, "worker"], env):
        result = await time_drain(url, REMAINING, events, limit_s=60 + events / 200)
    conn = await asyncpg.connect(url)
    try:
        made = int(await conn.fetchval(_MESSAGES_AFTER, before))
    finally:
        await conn.close()
    if made != events:
        raise RuntimeError(f"a drain of {events} events made {made} messages")
    return result | {"seed_and_vacuum_s": seed_s}


def _line(r: dict[str, Any]) -> str:
    return (
        f"reads p99 {r['conversations_first']['p99_ms']:.2f} / "
        f"{r['conversations_middle']['p99_ms']:.2f} / {r['messages']['p99_ms']:.2f} ms"
        f" | ingest {r['ingest']['rps']:.0f} req/s p99 {r['ingest']['p99_ms']:.1f} ms"
        f" | drain {r['drain']['rate']:.0f} events/s | copy {r['copy_s']:.1f} s"
    )


# -- autovacuum ----------------------------------------------------------------


AUTOVACUUM_VARIANTS = {
    "migration": "the migration's settings (autovacuum_vacuum_scale_factor 0.02)",
    "defaults": "PostgreSQL's defaults (the settings reset)",
}


async def _autovacuum(ctx: Context, large: str, sizes: Sizes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for variant in AUTOVACUUM_VARIANTS:
        async with copied(ctx, large, f"vacuum_{variant}") as (url, _):
            if variant == "defaults":
                conn = await asyncpg.connect(url)
                try:
                    await conn.execute(_RESET_AUTOVACUUM)
                finally:
                    await conn.close()
            out[variant] = await _rounds(url, sizes)
    return out


async def _rounds(url: str, sizes: Sizes) -> list[dict[str, Any]]:
    rounds = []
    env = child_env({"DATABASE_URL": url})
    conn = await asyncpg.connect(url)
    try:
        async with running("growth_vacuum_worker", [MESSAGING, "worker"], env):
            for number in range(sizes.autovacuum_rounds):
                started = time.monotonic()
                await conn.execute(_SEED, sizes.autovacuum_round_events, tag())
                drained = await time_drain(
                    url, REMAINING, sizes.autovacuum_round_events, limit_s=300
                )
                claim = await _claim_cost(conn)
                activity = {r["table_name"]: dict(r) for r in await conn.fetch(_ACTIVITY)}
                events = activity["inbound_events"]
                rounds.append(
                    {
                        "round": number + 1,
                        "rate": drained["rate"],
                        "claim_ms": claim["ms"],
                        "claim_buffers": claim["buffers"],
                        "n_dead_tup": events["n_dead_tup"],
                        "autovacuum_count": events["autovacuum_count"],
                        "messages_autovacuum_count": activity["messages"]["autovacuum_count"],
                    }
                )
                print(f"    autovacuum round {number + 1}: {rounds[-1]}", flush=True)
                rest = sizes.autovacuum_round_s - (time.monotonic() - started)
                if rest > 0:
                    await asyncio.sleep(rest)
    finally:
        await conn.close()
    return rounds


async def _claim_cost(conn: asyncpg.Connection) -> dict[str, float]:
    """A claim of up to 500 events on the empty queue, explained as it ran and
    rolled back: its execution time and the buffers it touched."""
    tx = conn.transaction()
    await tx.start()
    try:
        plan = json.loads(await conn.fetchval(_EXPLAIN + _CLAIM, "bench-probe", 500))[0]
    finally:
        await tx.rollback()
    top = plan["Plan"]
    buffers = top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0)
    return {"ms": plan["Execution Time"], "buffers": buffers}


# -- the report ----------------------------------------------------------------

# The measures compared, each: a label, how to read it from one run, whether
# more is better, and the target (ratio of large to small) it is held to.
_MEASURES: tuple[tuple[str, str, str, bool, float | None], ...] = (
    ("ingest req/s (messaging serve, 64 connections)", "ingest", "rps", True, THROUGHPUT_TARGET),
    ("ingest p99 ms", "ingest", "p99_ms", False, None),
    ("drain events/s (one worker)", "drain", "rate", True, THROUGHPUT_TARGET),
    ("GET /api/conversations, first page: p50 ms", "conversations_first", "p50_ms", False, None),
    ("GET /api/conversations, first page: p99 ms", "conversations_first", "p99_ms", False,
     READ_P99_TARGET),
    ("GET /api/conversations, middle page: p50 ms", "conversations_middle", "p50_ms", False,
     None),
    ("GET /api/conversations, middle page: p99 ms", "conversations_middle", "p99_ms", False,
     READ_P99_TARGET),
    ("GET /api/conversations/{id}/messages: p50 ms", "messages", "p50_ms", False, None),
    ("GET /api/conversations/{id}/messages: p99 ms", "messages", "p99_ms", False,
     READ_P99_TARGET),
)  # fmt: skip
# Summary keys of the targets (bench/report.py reads them).
TARGET_KEYS = {
    ("ingest", "rps"): "ingest_ratio",
    ("drain", "rate"): "drain_ratio",
    ("conversations_first", "p99_ms"): "conversations_first_p99_ratio",
    ("conversations_middle", "p99_ms"): "conversations_middle_p99_ratio",
    ("messages", "p99_ms"): "messages_p99_ratio",
}


def _section(
    ctx: Context,
    sizes: Sizes,
    history: dict[str, Any],
    raw: dict[str, list[dict[str, Any]]],
    vacuum: dict[str, Any],
) -> dict[str, Any]:
    p = ctx.profile
    summary: dict[str, Any] = {}
    rows = []
    for label, part, key, more_is_better, target in _MEASURES:
        small = [float(r[part][key]) for r in raw[SMALL]]
        large = [float(r[part][key]) for r in raw[LARGE]]
        ratio = paired_ratio(large, small)
        met = None
        if target is not None:
            met = "yes" if (ratio >= target if more_is_better else ratio <= target) else "**no**"
            bound = f">= {target:.2f}" if more_is_better else f"<= {target:.1f}"
            summary[TARGET_KEYS[(part, key)]] = ratio
        rows.append(
            [label, median(small), median(large), ratio, bound if target else "", met or ""]
        )
    large_n = history[LARGE]["events"]
    first = raw[LARGE][0]
    summary["large_events"] = large_n
    summary["generation_s"] = history[LARGE]["seconds"]["total"]
    summary["copy_s"] = median([float(r["copy_s"]) for r in raw[LARGE]])
    notes = _notes(sizes, history, raw, summary)
    tables = [
        table(
            f"Small ({history[SMALL]['events']:,} events) against large ({large_n:,} events)",
            ["measure", "small (abs)", "large (abs)", "large / small (ratio)", "target", "met"],
            rows,
        ),
        _history_table(history),
        _autovacuum_table(vacuum),
    ]
    summary["autovacuum"] = {
        variant: rounds[-1] | {"first_rate": rounds[0]["rate"]}
        for variant, rounds in vacuum.items()
        if rounds
    }
    return section(
        TITLE,
        what=(
            f"The history of bench/sql/growth.sql written by SQL into a database of its own: "
            f"large = {large_n:,} processed events (98% older than the 7-day retention), "
            f"{large_n + large_n // 20:,} messages (one send in 21) in "
            f"{history[LARGE]['conversations']:,} conversations of 105 messages; small = the "
            f"same at {history[SMALL]['events']:,} events in "
            f"{history[SMALL]['conversations']:,} conversations. Each repeat measures a fresh "
            "copy of each (CREATE DATABASE ... STRATEGY FILE_COPY), small and large in rotating "
            f"order, {p.repeats} repeats, medians and paired ratios. On each copy: `messaging "
            "serve` with default settings (an API key for the reads) answers the list reads "
            f"from wrk at {READ_CONNECTIONS} connections (the default "
            f"MESSAGING_MAX_CONCURRENT_READS), {sizes.read_s} s each after 1 s of warm-up: "
            f"GET /api/conversations page 1 and the middle page (page "
            f"{first['middle_page']:,}, {PAGE_SIZE} a page), and the first page of a "
            "conversation's "
            f"{first['messages_in_conversation']} messages; then webhooks from wrk at "
            f"{p.ingest_connections} connections for {p.ingest_s} s after {p.warmup_s} s of "
            "warm-up (the ingest scenario's load), the worker finishing the backlog after; then, "
            f"the service stopped, the drain scenario's {p.drain_events:,} events drained by one "
            "`messaging worker`. Then autovacuum: two more copies of the large database drained "
            f"for {sizes.autovacuum_rounds} rounds of {sizes.autovacuum_round_events:,} events "
            "by one worker, no VACUUM between rounds, one copy with the migration's autovacuum "
            "settings and one with them reset to PostgreSQL's defaults."
        ),
        tables=tables,
        raw={"history": history, "runs": raw, "autovacuum": vacuum},
        summary=summary,
        notes=notes,
    )


def _history_table(history: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for variant in (SMALL, LARGE):
        h = history[variant]
        seconds = h["seconds"]
        sizes = {t["table_name"]: t for t in h["tables"]}
        heap = sum(t["table_bytes"] for t in sizes.values()) / 2**30
        index = sum(t["index_bytes"] for t in sizes.values()) / 2**30
        rows.append(
            [
                f"{variant}: {h['events']:,} events",
                seconds.get("events"),
                seconds.get("messages"),
                seconds.get("conversations"),
                seconds.get("indexes"),
                seconds.get("vacuum_analyze"),
                seconds["total"],
                heap,
                index,
            ]
        )
    columns = ["history", "events s", "messages s", "conversations s", "indexes s"]
    columns += ["VACUUM (ANALYZE) s", "total s (abs)", "tables GiB", "indexes GiB"]
    return table("Writing the history (2 sessions; secondary indexes built after)", columns, rows)


def _autovacuum_table(vacuum: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for variant, rounds in vacuum.items():
        if not rounds:
            continue
        first, last = rounds[0], rounds[-1]
        rows.append(
            [
                AUTOVACUUM_VARIANTS[variant],
                first["rate"],
                last["rate"],
                last["rate"] / first["rate"] if first["rate"] else None,
                first["claim_ms"],
                last["claim_ms"],
                last["claim_buffers"],
                last["n_dead_tup"],
                last["autovacuum_count"],
            ]
        )
    columns = ["inbound_events and messages", "first round events/s", "last round events/s"]
    columns += ["last / first (ratio)", "empty claim ms, first round", "empty claim ms, last"]
    columns += ["empty claim buffers, last", "dead rows after last", "autovacuums of events"]
    title = "Autovacuum: rounds of draining at the large size, no manual VACUUM"
    return table(title, columns, rows)


def _read_notes(raw: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Where the list of conversations spends its time in the database, from
    the plans explained on each copy (medians)."""
    notes = []
    for page in ("first", "middle"):
        parts = {}
        for variant in (SMALL, LARGE):
            plans = [r["list_plans"][page] for r in raw[variant] if "list_plans" in r]
            if not plans:
                return []
            parts[variant] = {k: median([float(p[k]) for p in plans]) for k in plans[0]}
        small, large = parts[SMALL], parts[LARGE]
        notes.append(
            f"GET /api/conversations, {page} page, in PostgreSQL (EXPLAIN ANALYZE of "
            f"list_conversations): {small['execution_ms']:.2f} ms small, "
            f"{large['execution_ms']:.2f} ms large, of which the total (its Aggregate) "
            f"{large['count_ms']:.2f} ms and the page's walk of "
            f"conversations_last_activity_idx over {large.get('page_rows_walked', 0):,.0f} "
            f"rows {large['page_ms']:.2f} ms."
        )
    return notes


def _notes(
    sizes: Sizes,
    history: dict[str, Any],
    raw: dict[str, list[dict[str, Any]]],
    summary: dict[str, Any],
) -> list[str]:
    large = history[LARGE]
    notes = [
        f"Writing the large history took {large['seconds']['total']:.0f} s; a copy of the "
        f"written database (FILE_COPY) took {summary['copy_s']:.1f} s (median), which is "
        "why each repeat copies it instead of writing it again.",
        *_read_notes(raw),
        "Issue 13's targets: ingest and drain at the large size >= "
        f"{THROUGHPUT_TARGET:.2f} of the small size's, list reads' p99 <= "
        f"{READ_P99_TARGET:.0f}x. The machine is shared (2 cores): absolute figures move "
        "with it, the paired ratios less.",
    ]
    return notes
