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

from typing import Any

from bench.context import Context
from bench.loadgen import WARMUP_S
from bench.scenarios.common import rotated, section, service, skipped, table
from bench.scenarios.open_loop import commit_latencies, drive
from bench.stats import median, paired_ratio

TITLE = "6. End to end: NOTIFY against polling"

WORKER_MISSING = "worker not available (`messaging worker --help` fails on this branch)"


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
                    f"  (202: p50 {result['http_p50_ms']:.1f} ms, client lag p99"
                    f" {result['client_lag_p99_ms']:.1f} ms, errors {result['errors']})",
                    flush=True,
                )
    return _section(ctx, raw, ways)


async def measure(ctx: Context, rate: int, env: dict[str, str]) -> dict[str, Any]:
    async with (
        ctx.databases.migrated("e2e") as database_url,
        service(ctx, database_url, "e2e_service", worker=True, env=env) as base,
    ):
        records = await drive(base, rate, ctx.profile.e2e_s, "e2e")
        return await commit_latencies(database_url, records)


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
                "client_lag_p99_ms": m("client_lag_p99_ms"),
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
                    s["client_lag_p99_ms"],
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
            f"per measurement (after a warm-up of {WARMUP_S:g} s, sent but left out) to "
            "`messaging serve` (API + worker, LOG_LEVEL=WARNING), fresh "
            "database each; latency = message commit time (pg_xact_commit_timestamp of the "
            "messages row) minus the request's scheduled send time; 202 = the webhook's "
            "response time from the same start; client lag = how late the client started "
            f"a request (sent - scheduled). {p.repeats} repeats; medians of each "
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
                    "client lag p99 ms (abs)",
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
