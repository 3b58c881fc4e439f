"""Scenario 1, ingest: webhook POSTs with distinct provider ids from 64
connections (wrk, closed loop), against three servers measured in the same run:

- bare: bench/bare_server.py, issue 10's baseline (a): `request.json()` and a
  202, nothing else: the framework's ceiling;
- durable: bench/durable_server.py, issue 10's baseline (b): a msgspec decoder
  and the group-committed multi-row INSERT (with the NOTIFY trigger) before the
  202, nothing else: the cheapest durable ingest the stack allows;
- ceiling: bench/baseline_server.py, issue 5's: the same parsing and validation
  as the service and a 202 without a database;
- service, default settings: `messaging serve --no-worker` as a user starts it,
  logging included (LOG_LEVEL=INFO, the access log's default);
- service: the same with LOG_LEVEL=WARNING (issue 5's variant, kept for its
  targets), commits shared between requests;
- service, one commit per request: MESSAGING_GROUP_COMMIT=false;
- service, signed: default settings plus a webhook secret per channel, and
  every request signed (Standard Webhooks; bench/signed.py): what verifying a
  signature costs, as signed_vs_defaults (issue 11: at least 0.95).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from bench.context import Context
from bench.cpu import cpu_seconds, per_request, server_pids, total_cpu
from bench.db import HISTORY_EVENTS
from bench.procs import PYTHON, ROOT, run_command
from bench.scenarios.common import baseline, rotated, section, service, table, tag
from bench.signed import ENV as SIGNED_ENV
from bench.signed import SECRET, write_requests
from bench.stats import median, paired_ratio

TITLE = "1. Ingest"
LUA = ROOT / "bench" / "wrk" / "webhook.lua"
PATH = "/api/webhooks/sms"

VARIANTS = {
    "bare": "bare aiohttp handler, request.json() only (issue 10's baseline a)",
    "durable": "minimal durable handler: msgspec, group-committed INSERT (issue 10's baseline b)",
    "ceiling": "bare aiohttp, our validation, no database (issue 5's HTTP ceiling)",
    "service_defaults": "service, default settings (logging at INFO)",
    # Next to the defaults it is compared with: in the rotation it never follows
    # one_commit_each, whose thousands of commits leave PostgreSQL busy after it.
    "service_signed": "service, default settings, webhook secrets set, requests signed",
    "service": "service, group commit, LOG_LEVEL=WARNING",
    "one_commit_each": "service, MESSAGING_GROUP_COMMIT=false, LOG_LEVEL=WARNING",
}
# What each service variant changes from the bench's children's environment
# (LOG_LEVEL=WARNING, bench/procs.py).
_ENV = {
    "service_defaults": {},  # and none of the bench's settings: defaults=True
    "service": {},
    "one_commit_each": {"MESSAGING_GROUP_COMMIT": "false"},
    "service_signed": SIGNED_ENV,  # and defaults=True, as service_defaults
}
# The variants that run with default settings (none of the bench's own).
_DEFAULTS = ("service_defaults", "service_signed")


async def run(ctx: Context) -> dict[str, Any]:
    p = ctx.profile
    raw: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    for repeat in range(p.repeats):
        for variant in rotated(list(VARIANTS), repeat):
            sign = variant == "service_signed"
            async with _target(ctx, variant) as (url, pid, database_url):
                await load(ctx, url, p.warmup_s, tag(), signed=sign)
                pg = await server_pids(database_url) if database_url else []
                before = (cpu_seconds(pid), total_cpu(pg))
                result = await load(ctx, url, p.ingest_s, tag(), signed=sign)
                after = (cpu_seconds(pid), total_cpu(pg))
            result["server_cpu_us"] = per_request(before[0], after[0], result["requests"])
            result["postgres_cpu_us"] = per_request(before[1], after[1], result["requests"])
            raw[variant].append(result)
            print(
                f"  ingest {variant:16} repeat {repeat + 1}: {result['rps']:8.0f} req/s"
                f"  p50 {result['p50_ms']:6.2f} ms  p99 {result['p99_ms']:7.2f} ms"
                f"  errors {result['errors']}",
                flush=True,
            )
    return _section(ctx, raw)


def _cpu_pair(signed_us: float | None, defaults_us: float | None) -> str:
    if signed_us is None or defaults_us is None:
        return "the server's CPU per request not visible"
    return (
        f"{signed_us:.1f} us of server CPU per request against {defaults_us:.1f} us "
        f"({signed_us - defaults_us:+.1f} us)"
    )


@asynccontextmanager
async def _target(ctx: Context, variant: str) -> AsyncIterator[tuple[str, int, str | None]]:
    """The variant's URL, its server's pid, and its database (None: it has none)."""
    if variant == "durable":
        async with (
            ctx.databases.migrated("ingest") as database_url,
            baseline("bench.durable_server", database_url) as (base, pid),
        ):
            yield base + PATH, pid, database_url
        return
    if variant in ("bare", "ceiling"):
        module = "bench.bare_server" if variant == "bare" else "bench.baseline_server"
        async with baseline(module) as (base, pid):
            yield base + PATH, pid, None
        return
    env = _ENV[variant]
    pids: list[int] = []
    async with (
        ctx.databases.migrated("ingest") as database_url,
        service(
            ctx,
            database_url,
            f"ingest_{variant}",
            worker=False,
            env=env,
            pids=pids,
            defaults=variant in _DEFAULTS,
        ) as base,
    ):
        yield base + PATH, pids[0], database_url


async def load(
    ctx: Context, url: str, seconds: int, prefix: str, *, signed: bool = False
) -> dict[str, Any]:
    """Closed-loop load from a separate process: wrk, or the aiohttp stand-in.
    signed: every request carries a Standard Webhooks signature (wrk: signed
    ahead into a file, bench/signed.py; the stand-in signs each request)."""
    with tempfile.TemporaryDirectory(prefix="bench-signed-") as tmp:
        return await _load(ctx, url, seconds, prefix, Path(tmp) if signed else None)


async def _load(
    ctx: Context, url: str, seconds: int, prefix: str, signed_dir: Path | None
) -> dict[str, Any]:
    connections = ctx.profile.ingest_connections
    if ctx.can.wrk:
        argv = [
            ctx.can.wrk,
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA),
            url,
            "--",
            prefix,
        ]
        if signed_dir is not None:
            requests = signed_dir / "requests.tsv"
            await asyncio.to_thread(write_requests, requests, prefix, seconds)
            argv.append(str(requests))
    else:
        argv = [
            PYTHON,
            "-m",
            "bench.loadgen",
            "closed",
            url,
            f"--connections={connections}",
            f"--duration={seconds}",
            f"--prefix={prefix}",
        ]
        if signed_dir is not None:
            argv.append(f"--secret={SECRET}")
    code, out = await run_command(argv, limit_s=seconds + 60)
    lines = [line for line in out.splitlines() if line.startswith("WRK_JSON ")]
    if code != 0 or not lines:
        raise RuntimeError(f"load generator failed ({code}):\n{out[-2000:]}")
    s = json.loads(lines[-1].removeprefix("WRK_JSON "))
    await asyncio.sleep(0)  # let the event loop notice the child's end
    return {
        "requests": s["requests"],
        "rps": s["requests"] / (s["duration_us"] / 1e6),
        "p50_ms": s["p50_us"] / 1000,
        "p99_ms": s["p99_us"] / 1000,
        "max_ms": s["max_us"] / 1000,
        "errors": s["status_errors"] + s["socket_errors"] + s["timeouts"],
        # Signed requests sent a second time (the file was too short): duplicates.
        "reused": s.get("reused", 0),
    }


def _section(ctx: Context, raw: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    def series(variant: str, key: str) -> list[float]:
        return [float(r[key]) for r in raw[variant]]

    summary: dict[str, Any] = {}
    rows = []
    for variant, label in VARIANTS.items():
        rps = median(series(variant, "rps"))
        p50 = median(series(variant, "p50_ms"))
        p99 = median(series(variant, "p99_ms"))
        vs_rps = paired_ratio(series(variant, "rps"), series("ceiling", "rps"))
        vs_p99 = paired_ratio(series(variant, "p99_ms"), series("ceiling", "p99_ms"))
        cpu = [r.get("server_cpu_us") for r in raw[variant]]
        pg_cpu = [r.get("postgres_cpu_us") for r in raw[variant]]
        server_us = median([c for c in cpu if c is not None]) if None not in cpu else None
        pg_us = median([c for c in pg_cpu if c is not None]) if None not in pg_cpu else None
        vs_bare = paired_ratio(series(variant, "rps"), series("bare", "rps"))
        vs_bare_p99 = paired_ratio(series(variant, "p99_ms"), series("bare", "p99_ms"))
        vs_durable = paired_ratio(series(variant, "rps"), series("durable", "rps"))
        errors = sum(int(r["errors"]) for r in raw[variant])
        summary[variant] = {
            "rps": rps,
            "p50_ms": p50,
            "p99_ms": p99,
            "rps_vs_ceiling": vs_rps,
            "p99_vs_ceiling": vs_p99,
            "rps_vs_bare": vs_bare,
            "p99_vs_bare": vs_bare_p99,
            "rps_vs_durable": vs_durable,
            "server_cpu_us": server_us,
            "postgres_cpu_us": pg_us,
            "errors": errors,
        }
        rows.append(
            [
                label,
                rps,
                p50,
                p99,
                errors,
                vs_bare,
                vs_bare_p99,
                vs_durable,
                vs_rps,
                vs_p99,
                server_us,
                pg_us,
            ]
        )
    summary["group_commit_speedup"] = paired_ratio(
        series("service", "rps"), series("one_commit_each", "rps")
    )
    summary["signed_vs_defaults"] = paired_ratio(
        series("service_signed", "rps"), series("service_defaults", "rps")
    )
    tool = "wrk -t1" if ctx.can.wrk else "aiohttp closed-loop client (wrk not found)"
    p = ctx.profile
    defaults = summary["service_defaults"]
    notes = [
        "Issue 10, target 1: the service with default settings at "
        f"{defaults['rps_vs_durable']:.2f} of the minimal durable handler's req/s (target "
        f"0.95), {defaults['rps_vs_bare']:.2f} of the bare handler's (target 0.90) and "
        f"{defaults['p99_vs_bare']:.2f}x its p99 (target 1.5x). The minimal durable handler "
        f"itself: {summary['durable']['rps_vs_bare']:.2f} of the bare handler's req/s.",
        f"Target: service >= 0.90 of the ceiling's req/s (measured "
        f"{summary['service']['rps_vs_ceiling']:.2f}) and p99 <= 1.5x the ceiling's "
        f"(measured {summary['service']['p99_vs_ceiling']:.2f}x).",
        f"Group commit vs one commit per request: {summary['group_commit_speedup']:.2f}x "
        "the requests/s (ratio).",
    ]
    signed_ = summary["service_signed"]
    reused = sum(int(r.get("reused", 0)) for r in raw["service_signed"])
    notes.append(
        "Issue 11, signed webhooks: with secrets set and every request signed (Standard "
        f"Webhooks, checked before the body is parsed) the service answers "
        f"{summary['signed_vs_defaults']:.3f} of the unsigned defaults' req/s (target >= 0.95; "
        f"a cost of {1 - summary['signed_vs_defaults']:.1%}), with "
        + _cpu_pair(signed_["server_cpu_us"], defaults["server_cpu_us"])
        + ". "
        + (
            "The requests were signed ahead of each run into a file that wrk cycles "
            "through (bench/signed.py), so that wrk's own work is the same as for "
            "unsigned requests."
            if ctx.can.wrk
            else "The aiohttp client signed each request."
        )
        + (f" {reused} signed requests were sent twice (answered as duplicates)." if reused else "")
    )
    notes.append(
        f"Each service database starts with {HISTORY_EVENTS:,} processed events, analyzed "
        "(bench/sql/template.sql): on an empty, never-analyzed table the ingest statement "
        "looks existing rows up with a sequential scan until autovacuum analyzes it."
    )
    if ctx.can.worker and not ctx.can.serve_without_worker:
        notes.append("The worker ran in the service process (no --no-worker in this CLI).")
    return section(
        TITLE,
        what=(
            f"{p.ingest_connections} connections, closed loop ({tool}), {p.ingest_s} s per "
            f"measurement after {p.warmup_s} s of warm-up, distinct provider ids, "
            f"{p.repeats} repeats with the variants in rotating order; medians. "
            "The service runs as `messaging serve --no-worker` in its own process on a "
            "fresh database: first with default settings (logging at INFO), then with "
            "LOG_LEVEL=WARNING, the variant issue 5's targets are read from; and with "
            "default settings plus a webhook secret per channel, every request signed."
        ),
        tables=[
            table(
                "Ingest at 64 connections",
                [
                    "variant",
                    "req/s (abs)",
                    "p50 ms (abs)",
                    "p99 ms (abs)",
                    "errors",
                    "req/s / bare (ratio)",
                    "p99 / bare p99 (ratio)",
                    "req/s / durable (ratio)",
                    "req/s / ceiling (ratio)",
                    "p99 / ceiling p99 (ratio)",
                    "server CPU us/request (abs)",
                    "PostgreSQL CPU us/request (abs)",
                ],
                rows,
            )
        ],
        raw=raw,
        summary=summary,
        notes=notes,
    )
