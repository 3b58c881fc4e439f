"""Scenario: the whole pipeline (issue 10, target 2) and the CPU it costs per
webhook, by process (target 4).

Closed loop at 64 connections (wrk) for the profile's pipeline_s against:

- bare: bench/bare_server.py, `request.json()` and a 202: the framework's
  ceiling, whose req/s the pipeline's processed/s is compared with;
- serve: `messaging serve` with default settings (logging at INFO, the worker in
  the process), what `make run` starts;
- serve + worker: `messaging serve --no-worker` and `messaging worker` as two
  processes, default settings: the process model measured beside the default
  before it could become one.

For the service, "processed" counts the messages committed inside the load's
window; the backlog is what is still unprocessed when the load stops, in
seconds of work at the measured rate. received -> processed is taken for the
events received inside the window, from received_at to the commit of their
message (pg_xact_commit_timestamp). CPU per webhook is read from /proc for the
service's processes and PostgreSQL's, and transactions per webhook from
pg_stat_database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager, nullcontext
from typing import Any

import aiohttp
import asyncpg

from bench.context import Context
from bench.cpu import cpu_seconds, per_request, server_pids, total_cpu
from bench.procs import MESSAGING, default_settings_env, next_port, running, wait_until_ready
from bench.queries import query
from bench.scenarios.common import baseline, rotated, section, skipped, table, tag
from bench.scenarios.end_to_end import WORKER_MISSING
from bench.scenarios.ingest import PATH, load
from bench.stats import median, paired_ratio

TITLE = "2. Whole pipeline"
_CLOCK = query("pipeline.sql", "clock")
_BACKLOG = query("pipeline.sql", "backlog")
_WINDOW = query("pipeline.sql", "window_figures")
_TRANSACTIONS = query("pipeline.sql", "transactions")
_COMMIT_TS_ON = query("admin.sql", "commit_timestamps_on")
DRAIN_LIMIT_S = 120.0

VARIANTS = {
    "bare": "bare aiohttp handler, request.json() only (issue 10's baseline a)",
    "serve": "messaging serve, default settings (as make run starts it)",
    "serve_split": "messaging serve --no-worker + messaging worker, default settings",
}


async def run(ctx: Context) -> dict[str, Any]:
    if not ctx.can.worker:
        return skipped(TITLE, WORKER_MISSING)
    raw: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    for repeat in range(ctx.profile.repeats):
        for variant in rotated(list(VARIANTS), repeat):
            result = await (_bare(ctx) if variant == "bare" else pipeline_service(ctx, variant))
            raw[variant].append(result)
            print(f"  pipeline {variant:12} repeat {repeat + 1}: {_line(result)}", flush=True)
    return _section(ctx, raw)


def _line(r: dict[str, Any]) -> str:
    if "processed_per_s" not in r:
        return f"{r['rps']:8.0f} req/s  cpu {r['server_cpu_us']:.0f} us/req"
    return (
        f"{r['rps']:8.0f} req/s accepted, {r['processed_per_s']:8.0f}/s processed,"
        f" backlog {r['backlog_s']:.2f} s, received->processed p50 {r['p50_ms']:.1f} ms"
        f" p99 {r['p99_ms']:.1f} ms, errors {r['errors']}"
    )


async def _bare(ctx: Context) -> dict[str, Any]:
    async with baseline("bench.bare_server") as (base, pid):
        await load(ctx, base + PATH, ctx.profile.warmup_s, tag())
        before = cpu_seconds(pid)
        result = await load(ctx, base + PATH, ctx.profile.pipeline_s, tag())
        after = cpu_seconds(pid)
    result["server_cpu_us"] = per_request(before, after, result["requests"])
    return result


# The database settings of the processes for a database's URL (section 12 sends
# them through PgBouncer); None: DATABASE_URL alone.
DatabaseEnv = Callable[[str], dict[str, str]]
# Entered with the database's URL and the pids by role for the measured window
# (section 12 reads the CPU).
Watch = Callable[[str, dict[str, list[int]]], AbstractAsyncContextManager[object]]


@asynccontextmanager
async def _deployment(
    ctx: Context,
    database_url: str,
    variant: str,
    workers: int = 1,
    database_env: DatabaseEnv | None = None,
) -> AsyncIterator[tuple[str, dict[str, list[int]]]]:
    """The variant's processes on their own port (serve_split: `workers` worker
    processes); yields the base URL and the pids by role (api, worker; one
    process holds both for serve)."""
    port = next_port()
    database = database_env(database_url) if database_env else {"DATABASE_URL": database_url}
    env = default_settings_env({**database, "HOST": "127.0.0.1", "PORT": str(port)})
    async with AsyncExitStack() as stack:
        argv = [MESSAGING, "serve"] + (["--no-worker"] if variant == "serve_split" else [])
        api = await stack.enter_async_context(running(f"pipeline_{variant}", argv, env))
        pids = {"api": [api.pid]}
        if variant == "serve_split":
            pids["worker"] = []
            for i in range(workers):
                name = "pipeline_worker" + (f"_{i}" if i else "")
                worker = await stack.enter_async_context(running(name, [MESSAGING, "worker"], env))
                pids["worker"].append(worker.pid)
        base = f"http://127.0.0.1:{port}"
        await wait_until_ready(f"{base}/healthz", api)
        yield base, pids


async def pipeline_service(
    ctx: Context,
    variant: str,
    *,
    workers: int = 1,
    seconds: int | None = None,
    database_env: DatabaseEnv | None = None,
    watch: Watch | None = None,
) -> dict[str, Any]:
    """One measurement of the service variant (serve, or serve_split with
    `workers` worker processes) for `seconds` (the profile's pipeline_s)."""
    p = ctx.profile
    async with (
        ctx.databases.migrated("pipeline") as database_url,
        _deployment(ctx, database_url, variant, workers, database_env) as (base, pids),
    ):
        conn = await asyncpg.connect(database_url)
        try:
            await load(ctx, base + PATH, p.warmup_s, tag())
            await _drained(conn)
            commit_ts = bool(await conn.fetchval(_COMMIT_TS_ON))
            pg = await server_pids(database_url)
            await asyncio.sleep(1.1)  # pg_stat_database flushes at most once a second
            xacts0 = int(await conn.fetchval(_TRANSACTIONS))
            async with watch(database_url, pids) if watch else nullcontext():
                cpu0 = {role: total_cpu(ids) for role, ids in pids.items()} | {"pg": total_cpu(pg)}
                batches0 = await _batch_counts(base)
                t0 = float(await conn.fetchval(_CLOCK))
                result = await load(ctx, base + PATH, seconds or p.pipeline_s, tag())
                t1 = float(await conn.fetchval(_CLOCK))
                backlog = int(await conn.fetchval(_BACKLOG))
                drain_s = await _drained(conn)
                batches1 = await _batch_counts(base)
                cpu1 = {role: total_cpu(ids) for role, ids in pids.items()} | {"pg": total_cpu(pg)}
            await asyncio.sleep(1.1)
            xacts1 = int(await conn.fetchval(_TRANSACTIONS))
            window = await conn.fetchrow(_WINDOW, t0, t1, commit_ts)
        finally:
            await conn.close()
    processed_per_s = int(window["processed"]) / (t1 - t0)
    requests = result["requests"]
    # CPU over the load and the drain that followed it: the work of every
    # webhook of the window, ingest and processing.
    cpu = {role: per_request(cpu0[role], cpu1[role], requests) for role in cpu0}
    return (
        result
        | {
            "processed_per_s": processed_per_s,
            "processed_vs_accepted": processed_per_s / result["rps"] if result["rps"] else 0.0,
            "backlog": backlog,
            "backlog_s": backlog / processed_per_s if processed_per_s else float("inf"),
            "drain_after_s": drain_s,
            "p50_ms": window["p50_ms"],
            "p99_ms": window["p99_ms"],
            "measured_to": "commit" if commit_ts else "transaction start",
            "server_cpu_us": cpu["api"],
            "worker_cpu_us": cpu.get("worker"),
            "postgres_cpu_us": cpu["pg"],
            # The warm-up's transactions are done before xacts0; these are the
            # window's webhooks' and the bench's own few queries.
            "transactions_per_webhook": (xacts1 - xacts0) / requests if requests else None,
        }
        | _batch_sizes(batches0, batches1)
    )


# The service's histograms of rows per group commit and events per worker
# batch: their _sum and _count lines in /metrics.
_BATCH_SERIES = {
    "ingest": "messaging_ingest_batch_size",
    "worker": "messaging_worker_batch_size",
}


async def _batch_counts(base: str) -> dict[str, float]:
    """The _sum and _count of each batch-size histogram of the API process's
    /metrics (a standalone worker serves none: its keys are then missing)."""
    async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as resp:
        text = await resp.text()
    counts: dict[str, float] = {}
    for line in text.splitlines():
        for role, series in _BATCH_SERIES.items():
            for suffix in ("_sum", "_count"):
                if line.startswith(series + suffix):
                    key = role + suffix
                    counts[key] = counts.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return counts


def _batch_sizes(before: dict[str, float], after: dict[str, float]) -> dict[str, float | None]:
    """Mean rows per group commit and events per worker batch over the window."""
    sizes: dict[str, float | None] = {}
    for role in _BATCH_SERIES:
        batches = after.get(role + "_count", 0.0) - before.get(role + "_count", 0.0)
        rows = after.get(role + "_sum", 0.0) - before.get(role + "_sum", 0.0)
        sizes[f"{role}_batch_mean"] = rows / batches if batches else None
    return sizes


async def _drained(conn: asyncpg.Connection) -> float:
    """Seconds until every stored event is processed (bounded by DRAIN_LIMIT_S)."""
    started = time.monotonic()
    while int(await conn.fetchval(_BACKLOG)) > 0:
        if time.monotonic() - started > DRAIN_LIMIT_S:
            raise RuntimeError(f"the backlog did not drain within {DRAIN_LIMIT_S:.0f} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


def _med(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r.get(key) for r in runs]
    if not values or any(v is None for v in values):
        return None
    return median([float(v) for v in values if v is not None])


def _section(ctx: Context, raw: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    p = ctx.profile
    bare_rps = [r["rps"] for r in raw["bare"]]
    summary: dict[str, Any] = {
        "bare": {
            "rps": _med(raw["bare"], "rps"),
            "server_cpu_us": _med(raw["bare"], "server_cpu_us"),
        }
    }
    rows = []
    for variant in ("serve", "serve_split"):
        runs = raw[variant]
        s = {
            key: _med(runs, key)
            for key in (
                "rps",
                "processed_per_s",
                "backlog_s",
                "drain_after_s",
                "p50_ms",
                "p99_ms",
                "server_cpu_us",
                "worker_cpu_us",
                "postgres_cpu_us",
                "transactions_per_webhook",
                "ingest_batch_mean",
                "worker_batch_mean",
            )
        }
        s["processed_vs_bare"] = paired_ratio([r["processed_per_s"] for r in runs], bare_rps)
        s["max_backlog_s"] = max(r["backlog_s"] for r in runs)
        s["errors"] = sum(int(r["errors"]) for r in runs)
        summary[variant] = s
        rows.append(
            [
                VARIANTS[variant],
                s["rps"],
                s["processed_per_s"],
                s["processed_vs_bare"],
                s["backlog_s"],
                s["p50_ms"],
                s["p99_ms"],
                s["ingest_batch_mean"],
                s["worker_batch_mean"] if variant == "serve" else "(not served)",
                s["errors"],
            ]
        )
    summary["split_vs_serve"] = paired_ratio(
        [r["processed_per_s"] for r in raw["serve_split"]],
        [r["processed_per_s"] for r in raw["serve"]],
    )
    rows.insert(0, [VARIANTS["bare"], summary["bare"]["rps"], "-", 1.0, "-", "-", "-", "-", "-", 0])
    serve = summary["serve"]
    notes = [
        f"Issue 10, target 2: `messaging serve` (defaults) processed "
        f"{serve['processed_vs_bare']:.2f} of the bare handler's req/s (target 0.60), with "
        f"at most {serve['max_backlog_s']:.2f} s of work left at the end (target <= 1 s).",
        f"Two processes (API and worker) against one: {summary['split_vs_serve']:.2f}x the "
        "processed/s (ratio). `messaging serve` stays one process unless this says otherwise.",
        "CPU per webhook by process: section 4.",
    ]
    return section(
        TITLE,
        what=(
            f"{p.ingest_connections} connections, closed loop (wrk), {p.pipeline_s} s per "
            f"measurement after {p.warmup_s} s of warm-up (drained before the window), "
            f"{p.repeats} repeats with the variants in rotating order; medians. Default "
            "settings: nothing set but the database and the port (logging at INFO)."
        ),
        tables=[
            table(
                "Webhooks processed under closed-loop load",
                [
                    "variant",
                    "accepted req/s (abs)",
                    "processed/s (abs)",
                    "processed / bare req/s (ratio)",
                    "backlog at end, s of work (abs)",
                    "received -> processed p50 ms (abs)",
                    "p99 ms (abs)",
                    "rows per group commit",
                    "events per worker batch",
                    "errors",
                ],
                rows,
            ),
        ],
        raw=raw,
        summary=summary,
        notes=notes,
    )
