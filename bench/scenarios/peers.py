"""Scenario 4, peers: pgqueuer and procrastinate from PyPI on the same server in
the same run, with a no-op job:

- enqueue: one job per transaction from 64 concurrent callers over a pool of 10
  connections (the service's pool size), as fast as it goes;
- drain: jobs inserted in bulk, then one worker process at its best settings
  (the full run tries each peer's main setting first); the service's own worker
  drains the same number of events in the same rounds, for a paired ratio;
- latency: one job per transaction at a fixed rate (open loop), from the job's
  scheduled time to the moment the no-op job runs in the worker.

Their jobs do nothing. The service's worker does real work for each event (a
message row, a conversation upsert, the event marked processed).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Any

import asyncpg

from bench.context import Context
from bench.peers.cli import PEERS, driver
from bench.procs import PYTHON, WORK_DIR, run_command, running
from bench.queries import query
from bench.scenarios.common import rotated, section, table
from bench.scenarios.drain import drain_service
from bench.scenarios.draining import time_drain
from bench.stats import latency_summary, median, paired_ratio

TITLE = "4. Peers (pgqueuer, procrastinate)"
SERVICE = "messaging-service"
ENQUEUE_CONCURRENCY = 64
# Jobs per try of a setting when the full run looks for each peer's best.
SWEEP_JOBS = {"pgqueuer": 20_000, "procrastinate": 3_000}


def _cli(peer: str, command: str, url: str, *options: str) -> list[str]:
    return [PYTHON, "-m", "bench.peers.cli", peer, command, url, *options]


async def run(ctx: Context) -> dict[str, Any]:
    p = ctx.profile
    knobs = {peer: int(driver(peer).DEFAULT) for peer in PEERS}
    sweeps: dict[str, dict[str, float]] = {}
    if p.peer_sweep:
        for peer in PEERS:
            tried = {}
            for knob in driver(peer).SWEEP:
                tried[str(knob)] = (await peer_drain(ctx, peer, SWEEP_JOBS[peer], knob))["rate"]
                print(f"  sweep {peer} {driver(peer).KNOB}={knob}: {tried[str(knob)]:.0f} jobs/s")
            sweeps[peer] = tried
            knobs[peer] = int(max(tried, key=lambda k: tried[k]))
    drainers = [*PEERS, SERVICE] if ctx.can.worker else list(PEERS)
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {
        "enqueue": {peer: [] for peer in PEERS},
        "drain": {name: [] for name in drainers},
        "latency": {peer: [] for peer in PEERS},
    }
    for repeat in range(p.repeats):
        for peer in rotated(list(PEERS), repeat):
            result = await peer_enqueue(ctx, peer)
            raw["enqueue"][peer].append(result)
            _say(f"enqueue {peer}", repeat, f"{result['jobs_per_s']:.0f} jobs/s")
        for name in rotated(drainers, repeat):
            if name == SERVICE:
                result = await drain_service(ctx, p.peer_drain_jobs, 1)
            else:
                result = await peer_drain(ctx, name, _drain_jobs(ctx, name), knobs[name])
            raw["drain"][name].append(result)
            _say(f"drain {name}", repeat, f"{result['rate']:.0f} jobs/s")
        for peer in rotated(list(PEERS), repeat):
            result = await peer_latency(ctx, peer, knobs[peer])
            raw["latency"][peer].append(result)
            _say(f"latency {peer}", repeat, f"p50 {result['p50_ms']:.1f} ms")
    return _section(ctx, raw, knobs, sweeps)


def _say(what: str, repeat: int, figure: str) -> None:
    print(f"  {what:24} repeat {repeat + 1}: {figure}", flush=True)


def _drain_jobs(ctx: Context, peer: str) -> int:
    p = ctx.profile
    return p.procrastinate_drain_jobs if peer == "procrastinate" else p.peer_drain_jobs


async def _install(peer: str, url: str) -> None:
    code, out = await run_command(_cli(peer, "install", url), limit_s=120)
    if code != 0:
        raise RuntimeError(f"{peer} install failed:\n{out[-2000:]}")


async def peer_enqueue(ctx: Context, peer: str) -> dict[str, Any]:
    seconds = ctx.profile.peer_enqueue_s
    async with ctx.databases.empty(peer) as url:
        await _install(peer, url)
        options = [f"--seconds={seconds}", f"--concurrency={ENQUEUE_CONCURRENCY}"]
        code, out = await run_command(_cli(peer, "enqueue", url, *options), limit_s=seconds + 120)
    lines = [line for line in out.splitlines() if line.startswith("PEER_JSON ")]
    if code != 0 or not lines:
        raise RuntimeError(f"{peer} enqueue failed:\n{out[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("PEER_JSON "))
    return result


async def peer_drain(ctx: Context, peer: str, jobs: int, knob: int) -> dict[str, Any]:
    async with ctx.databases.empty(peer) as url:
        await _install(peer, url)
        code, out = await run_command(_cli(peer, "seed", url, f"--jobs={jobs}"), limit_s=600)
        if code != 0:
            raise RuntimeError(f"{peer} seed failed:\n{out[-2000:]}")
        await _execute(url, query("peers.sql", f"{peer}_vacuum"))
        async with running(f"{peer}_worker", _cli(peer, "work", url, f"--knob={knob}")):
            remaining = query("peers.sql", f"{peer}_remaining")
            return await time_drain(url, remaining, jobs, limit_s=60 + jobs / 50)


async def peer_latency(ctx: Context, peer: str, knob: int) -> dict[str, Any]:
    p = ctx.profile
    record = WORK_DIR / f"{peer}_latencies.json"
    record.unlink(missing_ok=True)
    remaining = query("peers.sql", f"{peer}_remaining")
    async with ctx.databases.empty(peer) as url:
        await _install(peer, url)
        # One job first: once it is done, the worker is listening.
        await run_command(_cli(peer, "seed", url, "--jobs=1"), limit_s=120)
        worker = _cli(peer, "work", url, f"--knob={knob}", f"--record={record}")
        async with running(f"{peer}_worker", worker):
            await _wait_empty(url, remaining, limit_s=60)
            options = [f"--rate={p.peer_latency_rate}", f"--seconds={p.peer_latency_s}"]
            code, out = await run_command(
                _cli(peer, "produce", url, *options), limit_s=p.peer_latency_s + 120
            )
            if code != 0:
                raise RuntimeError(f"{peer} produce failed:\n{out[-2000:]}")
            await _wait_empty(url, remaining, limit_s=120)
        # The worker wrote its record when it stopped.
    latencies_ms = [s * 1000 for s in json.loads(record.read_text(encoding="utf-8"))]
    return latency_summary(latencies_ms)


async def _execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _wait_empty(url: str, remaining_sql: str, limit_s: float) -> None:
    conn = await asyncpg.connect(url)
    try:
        deadline = time.monotonic() + limit_s
        while int(await conn.fetchval(remaining_sql)) > 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"jobs left after {limit_s:.0f} s")
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


def _section(
    ctx: Context,
    raw: dict[str, dict[str, list[dict[str, Any]]]],
    knobs: dict[str, int],
    sweeps: dict[str, dict[str, float]],
) -> dict[str, Any]:
    p = ctx.profile
    summary: dict[str, Any] = {}
    rows = []
    service_rates = [r["rate"] for r in raw["drain"].get(SERVICE, [])]
    for peer in PEERS:
        enq = raw["enqueue"][peer]
        lat = raw["latency"][peer]
        rates = [r["rate"] for r in raw["drain"][peer]]
        s = {
            "enqueue_jobs_per_s": median([r["jobs_per_s"] for r in enq]),
            "enqueue_p99_ms": median([r["enqueue_p99_ms"] for r in enq]),
            "drain_jobs_per_s": median(rates),
            "drain_jobs": _drain_jobs(ctx, peer),
            "latency_p50_ms": median([r["p50_ms"] for r in lat]),
            "latency_p99_ms": median([r["p99_ms"] for r in lat]),
            "latency_max_ms": median([r["max_ms"] for r in lat]),
            "settings": f"{driver(peer).SETTINGS}, {driver(peer).KNOB}={knobs[peer]}",
            "service_drain_vs_this": (
                paired_ratio(service_rates, rates) if service_rates else math.nan
            ),
        }
        summary[peer] = s
        rows.append(
            [
                f"{peer} (no-op job)",
                s["enqueue_jobs_per_s"],
                s["enqueue_p99_ms"],
                s["drain_jobs_per_s"],
                s["latency_p50_ms"],
                s["latency_p99_ms"],
                s["latency_max_ms"],
                s["service_drain_vs_this"],
            ]
        )
    rows.append(_service_row(ctx, service_rates, summary))
    settings = [f"{peer}: {summary[peer]['settings']}" for peer in PEERS]
    notes = [
        "Our numbers include real work (a message row, a conversation upsert, the event "
        "marked processed, per event); the peers' jobs are no-op jobs.",
        "Peer settings: " + "; ".join(settings) + ".",
        "Enqueue: one job per transaction, 64 concurrent callers over a pool of 10 "
        "connections. The service's figure is scenario 1's ingest (HTTP included, group commit).",
        "Latency: peers from the job's scheduled enqueue time to the no-op job starting in "
        "the worker; the service from the webhook's scheduled send time to its message's "
        "commit (scenario 2, NOTIFY, same rate).",
    ]
    if p.procrastinate_drain_jobs != p.peer_drain_jobs:
        notes.append(
            f"procrastinate drained {p.procrastinate_drain_jobs:,} jobs per repeat (the others "
            f"{p.peer_drain_jobs:,}) to keep this run short."
        )
    if not ctx.can.worker:
        notes.append("The service's worker is not on this branch: its drain was not measured.")
    tables = [
        table(
            "Side by side",
            [
                "system",
                "enqueue jobs/s (abs)",
                "enqueue p99 ms (abs)",
                "drain jobs/s (abs)",
                f"latency p50 ms at {p.peer_latency_rate}/s (abs)",
                "latency p99 ms (abs)",
                "latency max ms (abs)",
                "service drain / this (ratio)",
            ],
            rows,
        )
    ]
    for peer, tried in sweeps.items():
        knob = driver(peer).KNOB
        tables.append(
            table(
                f"{peer}: drain rate by {knob} ({SWEEP_JOBS[peer]:,} jobs, one try each)",
                [knob, "jobs/s (abs)"],
                [[k, v] for k, v in tried.items()],
            )
        )
    return section(
        TITLE,
        what=(
            f"pgqueuer and procrastinate (versions in the machine section) on the same server, "
            f"each on a fresh database with its own schema. Enqueue for {p.peer_enqueue_s:g} s; "
            f"drain {p.peer_drain_jobs:,} jobs per repeat; latency at "
            f"{p.peer_latency_rate}/s open loop for {p.peer_latency_s:g} s. "
            f"{p.repeats} repeats, systems in rotating order; medians."
        ),
        tables=tables,
        raw=raw,
        summary=summary,
        notes=notes,
    )


def _service_row(ctx: Context, service_rates: list[float], summary: dict[str, Any]) -> list[Any]:
    ingest = ctx.done.get("ingest", {}).get("summary", {}).get("service", {})
    e2e = ctx.done.get("end_to_end", {}).get("summary", {})
    rate = str(ctx.profile.peer_latency_rate)
    notify = e2e.get(rate, {}).get("notify", {})
    summary[SERVICE] = {
        "drain_jobs_per_s": median(service_rates) if service_rates else math.nan,
        "enqueue_jobs_per_s": ingest.get("rps", math.nan),
        "latency_p50_ms": notify.get("p50_ms", math.nan),
        "latency_p99_ms": notify.get("p99_ms", math.nan),
    }
    s = summary[SERVICE]
    return [
        "messaging-service (real work)",
        s["enqueue_jobs_per_s"],
        ingest.get("p99_ms", math.nan),
        s["drain_jobs_per_s"],
        s["latency_p50_ms"],
        s["latency_p99_ms"],
        notify.get("max_ms", math.nan),
        1.0 if service_rates else math.nan,
    ]
