"""Scenario 2, end to end: webhooks sent open loop at fixed rates to
`messaging serve` (API and worker in one process, as `make run` runs it), and
the latency from each request's scheduled send time to the commit of its
message, with the worker woken by NOTIFY and with polling alone.

The load generator (bench/loadgen.py, its own process) records each request's
scheduled time with the wall clock; after the run the database gives each
event's message commit time (pg_xact_commit_timestamp of the message row, on
the same machine's clock). Scheduled, not actual, send time: a load generator
that falls behind shows up as latency instead of hiding it.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import asyncpg

from bench.context import Context
from bench.procs import PYTHON, WORK_DIR, run_command
from bench.queries import query
from bench.scenarios.common import rotated, section, service, skipped, table, tag
from bench.stats import latency_summary, median, paired_ratio, percentile

TITLE = "2. End to end"
_DONE = query("end_to_end.sql", "messages_done")
_COMMITTED = query("end_to_end.sql", "message_commit_times")
_STARTED = query("end_to_end.sql", "message_start_times")
_COMMIT_TS_ON = query("admin.sql", "commit_timestamps_on")

WORKER_MISSING = "worker not available (`messaging worker --help` fails on this branch)"
PATH = "/api/webhooks/sms"
WARMUP_REQUESTS = 50


def modes(ctx: Context) -> dict[str, tuple[str, dict[str, str]]]:
    """Label and environment of each way of waking the worker."""
    result = {"notify": ("LISTEN/NOTIFY (default)", {})}
    for ms in ctx.profile.e2e_sweeps_ms:
        result[f"poll_{ms}ms"] = (
            f"polling only, sweep {ms} ms",
            {"MESSAGING_LISTEN": "false", "MESSAGING_SWEEP_INTERVAL_MS": str(ms)},
        )
    return result


async def run(ctx: Context) -> dict[str, Any]:
    if not ctx.can.worker:
        return skipped(TITLE, WORKER_MISSING)
    p = ctx.profile
    ways = modes(ctx)
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {
        str(rate): {m: [] for m in ways} for rate in p.e2e_rates
    }
    for repeat in range(p.repeats):
        for rate in p.e2e_rates:
            for mode in rotated(list(ways), repeat):
                result = await measure(ctx, rate, ways[mode][1])
                raw[str(rate)][mode].append(result)
                print(
                    f"  e2e {rate:5}/s {mode:12} repeat {repeat + 1}:"
                    f" p50 {result['p50_ms']:8.1f} ms  p99 {result['p99_ms']:8.1f} ms"
                    f"  max {result['max_ms']:8.1f} ms"
                    f"  (202: p50 {result['http_p50_ms']:.1f} ms, errors {result['errors']})",
                    flush=True,
                )
    return _section(ctx, raw, ways)


async def measure(ctx: Context, rate: int, env: dict[str, str]) -> dict[str, Any]:
    p = ctx.profile
    async with (
        ctx.databases.migrated("e2e") as database_url,
        service(ctx, database_url, "e2e_service", worker=True, env=env) as base,
    ):
        await _warm_up(base + PATH)
        out = WORK_DIR / "e2e_records.json"
        argv = [PYTHON, "-m", "bench.loadgen", "open", base + PATH]
        argv += [f"--rate={rate}", f"--duration={p.e2e_s}", f"--prefix={tag()}", f"--out={out}"]
        code, log = await run_command(argv, limit_s=p.e2e_s + 120)
        if code != 0:
            raise RuntimeError(f"load generator failed ({code}):\n{log[-2000:]}")
        records = json.loads(out.read_text(encoding="utf-8"))
        return await _latencies(database_url, records)


async def _warm_up(url: str) -> None:
    """A few requests first, so that connections and caches are warm."""
    async with aiohttp.ClientSession() as session:
        for i in range(WARMUP_REQUESTS):
            body = {"from": "+18045550000", "to": "+12016661234", "type": "sms"}
            body |= {"messaging_provider_id": f"warmup-{tag()}-{i}", "body": "warm-up"}
            body |= {"attachments": None, "timestamp": "2024-11-01T14:00:00Z"}
            async with session.post(url, json=body) as resp:
                await resp.read()


async def _latencies(database_url: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    accepted = [r for r in records if r.get("status") == 202 and r.get("id") is not None]
    ids = [r["id"] for r in accepted]
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + 60
        while int(await conn.fetchval(_DONE, ids)) < len(ids):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        commit_ts = bool(await conn.fetchval(_COMMIT_TS_ON))
        rows = await conn.fetch(_COMMITTED if commit_ts else _STARTED, ids)
    finally:
        await conn.close()
    by_id = {row["id"]: row for row in rows}
    e2e, http, stored, lag = [], [], [], []
    for r in accepted:
        row = by_id.get(r["id"])
        if row is None:
            continue
        done = row["committed"] if row["committed"] is not None else row["created"]
        e2e.append((done - r["scheduled"]) * 1000)
        stored.append((row["received"] - r["scheduled"]) * 1000)
        http.append((r["done"] - r["scheduled"]) * 1000)
        lag.append((r["sent"] - r["scheduled"]) * 1000)
    summary = latency_summary(e2e)
    return summary | {
        "requests": len(records),
        "errors": len(records) - len(accepted),
        "missing_messages": len(accepted) - len(e2e),
        "http_p50_ms": percentile(http, 50),
        "http_p99_ms": percentile(http, 99),
        "stored_p50_ms": percentile(stored, 50),
        "send_lag_p99_ms": percentile(lag, 99),
        "measured_to": "commit" if commit_ts else "transaction start",
    }


def _section(
    ctx: Context,
    raw: dict[str, dict[str, list[dict[str, Any]]]],
    ways: dict[str, tuple[str, dict[str, str]]],
) -> dict[str, Any]:
    p = ctx.profile
    rows, summary = [], {}
    for rate in p.e2e_rates:
        per = raw[str(rate)]
        base = [r["p50_ms"] for r in per["notify"]]
        summary[str(rate)] = {}
        for mode, (label, _) in ways.items():
            runs = per[mode]

            def m(key: str, runs: list[dict[str, Any]] = runs) -> float:
                return median([float(r[key]) for r in runs])

            vs = paired_ratio([r["p50_ms"] for r in runs], base)
            errors = sum(r["errors"] + r["missing_messages"] for r in runs)
            summary[str(rate)][mode] = {
                "p50_ms": m("p50_ms"),
                "p99_ms": m("p99_ms"),
                "max_ms": m("max_ms"),
                "http_p50_ms": m("http_p50_ms"),
                "http_p99_ms": m("http_p99_ms"),
                "p50_vs_notify": vs,
                "errors": errors,
            }
            s = summary[str(rate)][mode]
            rows.append(
                [
                    f"{rate}/s",
                    label,
                    s["p50_ms"],
                    s["p99_ms"],
                    s["max_ms"],
                    s["http_p50_ms"],
                    s["http_p99_ms"],
                    errors,
                    vs,
                ]
            )
    measured_to = raw[str(p.e2e_rates[0])]["notify"][0]["measured_to"]
    notes = []
    if measured_to != "commit":
        notes.append(
            "track_commit_timestamp is off on this server: latencies end at the start of "
            "the message's transaction (messages.created_at), slightly before its commit."
        )
    return section(
        TITLE,
        what=(
            f"Open-loop webhooks at {', '.join(f'{r}/s' for r in p.e2e_rates)} for {p.e2e_s:g} s "
            "per measurement (after "
            f"{WARMUP_REQUESTS} warm-up requests) to `messaging serve` (API + worker), fresh "
            "database each; latency = message commit time (pg_xact_commit_timestamp of the "
            "messages row) minus the request's scheduled send time; 202 = the webhook's "
            f"response time from the same start. {p.repeats} repeats; medians of each "
            "repeat's percentiles. The max is the median of the repeats' maxima."
        ),
        tables=[
            table(
                "Webhook to committed message",
                [
                    "rate",
                    "worker woken by",
                    "p50 ms (abs)",
                    "p99 ms (abs)",
                    "max ms (abs)",
                    "202 p50 ms (abs)",
                    "202 p99 ms (abs)",
                    "errors",
                    "p50 / NOTIFY p50 (ratio)",
                ],
                rows,
            )
        ],
        raw=raw,
        summary=summary,
        notes=notes,
    )
