"""Scenario 5, the database's ceiling: pgbench (the embedded server's own) on
the same server, one-row INSERT transactions into an inbound_events-shaped
table, with and without the NOTIFY trigger, at 1, 8 and 32 clients.

Each NOTIFYing transaction holds a server-wide lock through its commit, which is
what the service's group commit works around: this is the price of that lock on
this machine, and the rate at which one row per commit tops out.
"""

from __future__ import annotations

import re
from typing import Any

import asyncpg

from bench.context import Context
from bench.procs import child_env, run_command
from bench.queries import SQL_DIR, query
from bench.scenarios.common import rotated, section, table
from bench.stats import median, paired_ratio
from messaging.embedded import bin_dir

TITLE = "8. Database ceiling (pgbench)"
_SETUP = query("pgbench_setup.sql", "create_plain_events")
TABLES = {
    "notify": ("inbound_events (NOTIFY trigger)", SQL_DIR / "pgbench_insert_inbound_events.sql"),
    "plain": ("same table, no trigger", SQL_DIR / "pgbench_insert_plain_events.sql"),
}
_TPS = re.compile(r"^tps = ([\d.]+) \(without initial connection time\)", re.MULTILINE)
_LATENCY = re.compile(r"^latency average = ([\d.]+) ms", re.MULTILINE)


async def run(ctx: Context) -> dict[str, Any]:
    p = ctx.profile
    raw: dict[str, dict[int, list[dict[str, float]]]] = {
        t: {c: [] for c in p.pgbench_clients} for t in TABLES
    }
    for repeat in range(p.repeats):
        async with ctx.databases.migrated("pgbench") as url:
            conn = await asyncpg.connect(url)
            try:
                await conn.execute(_SETUP)
            finally:
                await conn.close()
            database = url.split("?")[0].rsplit("/", 1)[1]
            for clients in p.pgbench_clients:
                for name in rotated(list(TABLES), repeat):
                    result = await pgbench(ctx, database, TABLES[name][1], clients)
                    raw[name][clients].append(result)
                    print(
                        f"  pgbench {name:6} {clients:2} clients repeat {repeat + 1}: "
                        f"{result['tps']:8.0f} tps  avg {result['latency_ms']:.2f} ms",
                        flush=True,
                    )
    return _section(ctx, raw)


async def pgbench(ctx: Context, database: str, script: Any, clients: int) -> dict[str, float]:
    seconds = ctx.profile.pgbench_s
    argv = [
        str(bin_dir() / "pgbench"),
        "-n",  # no vacuum of pgbench's own tables: there are none
        "-M",
        "prepared",  # as asyncpg does
        "-f",
        str(script),
        "-c",
        str(clients),
        "-j",
        str(min(clients, 2)),
        "-T",
        str(seconds),
        database,
    ]
    code, out = await run_command(argv, child_env(ctx.server.libpq_env()), limit_s=seconds + 60)
    tps, latency = _TPS.search(out), _LATENCY.search(out)
    if code != 0 or not tps or not latency:
        raise RuntimeError(f"pgbench failed ({code}):\n{out[-2000:]}")
    return {"tps": float(tps.group(1)), "latency_ms": float(latency.group(1))}


def _section(ctx: Context, raw: dict[str, dict[int, list[dict[str, float]]]]) -> dict[str, Any]:
    def series(name: str, clients: int, key: str) -> list[float]:
        return [r[key] for r in raw[name][clients]]

    rows = []
    summary: dict[str, Any] = {}
    for clients in ctx.profile.pgbench_clients:
        notify = median(series("notify", clients, "tps"))
        plain = median(series("plain", clients, "tps"))
        cost = paired_ratio(series("notify", clients, "tps"), series("plain", clients, "tps"))
        summary[str(clients)] = {
            "notify_tps": notify,
            "plain_tps": plain,
            "notify_latency_ms": median(series("notify", clients, "latency_ms")),
            "plain_latency_ms": median(series("plain", clients, "latency_ms")),
            "notify_vs_plain": cost,
        }
        s = summary[str(clients)]
        rows.append([clients, notify, s["notify_latency_ms"], plain, s["plain_latency_ms"], cost])
    p = ctx.profile
    notes = []
    ingest = ctx.done.get("ingest", {}).get("summary", {}).get("service", {}).get("rps")
    most = str(max(p.pgbench_clients))
    if ingest and summary[most]["notify_tps"]:
        notes.append(
            f"The service's ingest (scenario 1, HTTP included) reached "
            f"{ingest / summary[most]['notify_tps']:.2f}x the one-row-per-commit rate with the "
            f"trigger at {most} clients (ratio of two medians of this run): what sharing "
            "commits buys over the lock NOTIFY holds through each commit."
        )
    return section(
        TITLE,
        what=(
            f"pgbench -n -M prepared -T {p.pgbench_s} -c N -j min(N,2), one INSERT ... ON "
            "CONFLICT DO NOTHING of a webhook-shaped row per transaction (scripts in "
            f"bench/sql/pgbench_insert_*.sql), {p.repeats} repeats, each on a fresh "
            "database; medians. tps excludes connection time."
        ),
        tables=[
            table(
                "One-row INSERT transactions",
                [
                    "clients",
                    "with NOTIFY trigger tps (abs)",
                    "avg ms (abs)",
                    "no trigger tps (abs)",
                    "avg ms (abs)",
                    "trigger / no trigger (ratio)",
                ],
                rows,
            )
        ],
        raw={t: {str(c): v for c, v in per.items()} for t, per in raw.items()},
        summary=summary,
        notes=notes,
    )
