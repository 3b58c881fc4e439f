"""Scenario 4, peers: pgqueuer and procrastinate from PyPI on the same server in
the same run, with a no-op job:

- enqueue: one job per transaction from 64 concurrent callers over a pool of 10
  connections (the service's pool size), as fast as it goes;
- drain: jobs inserted in bulk, then one worker process at its best settings
  (the full run tries each peer's main setting first); the service's own worker
  drains the same number of events in the same rounds, for a paired ratio;
- latency: one job per transaction at a fixed rate (open loop), from the job's
  scheduled time to the moment the no-op job runs in the worker.

Those jobs do nothing. The service's worker does real work for each event (a
message row, a conversation upsert, the event marked processed), so the drain
is also measured against work like ours (bench/scenarios/same_work.py):

- same work: each peer's jobs doing, one job and one transaction per event,
  what the worker does for an event, in the service's tables;
- the SQL-only limit: the same rows written by SQL alone, set-based, in
  batches of 500, with no Python in the loop.
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
from bench.procs import WORK_DIR, run_command, running
from bench.queries import query
from bench.scenarios.common import rotated, section, table
from bench.scenarios.drain import drain_service
from bench.scenarios.draining import time_drain
from bench.scenarios.peer_steps import command, install
from bench.scenarios.same_work import LIMIT_BATCH, peer_work_drain, sql_limit_drain
from bench.stats import latency_summary, median, paired_ratio

TITLE = "5. Drain against peers (pgqueuer, procrastinate) and the SQL-only limit"
SERVICE = "messaging-service"
# The drains beside the no-op peers': each peer's same-work jobs, by name, and
# the service's rows written by SQL alone.
WORK = {f"{peer}_work": peer for peer in PEERS}
SQL_LIMIT = "sql_limit"
ENQUEUE_CONCURRENCY = 64
# Jobs per try of a setting when the full run looks for each peer's best.
SWEEP_JOBS = {"pgqueuer": 20_000, "procrastinate": 3_000}


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
    drainers = [*PEERS, *WORK, SQL_LIMIT, *([SERVICE] if ctx.can.worker else [])]
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
            result = await _drain(ctx, name, knobs)
            raw["drain"][name].append(result)
            _say(f"drain {name}", repeat, f"{result['rate']:.0f} jobs/s")
        for peer in rotated(list(PEERS), repeat):
            result = await peer_latency(ctx, peer, knobs[peer])
            raw["latency"][peer].append(result)
            _say(f"latency {peer}", repeat, f"p50 {result['p50_ms']:.1f} ms")
    return _section(ctx, raw, knobs, sweeps)


def _say(what: str, repeat: int, figure: str) -> None:
    print(f"  {what:24} repeat {repeat + 1}: {figure}", flush=True)


async def _drain(ctx: Context, name: str, knobs: dict[str, int]) -> dict[str, Any]:
    """One drain of the system called name. The same-work jobs run at the
    setting of their peer's no-op drain."""
    jobs = _drain_jobs(ctx, name)
    if name == SERVICE:
        return await drain_service(ctx, jobs, 1)
    if name == SQL_LIMIT:
        return await sql_limit_drain(ctx, jobs)
    if name in WORK:
        return await peer_work_drain(ctx, WORK[name], jobs, knobs[WORK[name]])
    return await peer_drain(ctx, name, jobs, knobs[name])


def _drain_jobs(ctx: Context, name: str) -> int:
    """Jobs (or events) per drain: procrastinate, a few hundred jobs/s, drains
    fewer; a job that does an event's work, fewer still."""
    p = ctx.profile
    return {
        "procrastinate": p.procrastinate_drain_jobs,
        "pgqueuer_work": p.peer_work_jobs,
        "procrastinate_work": p.procrastinate_work_jobs,
    }.get(name, p.peer_drain_jobs)


async def peer_enqueue(ctx: Context, peer: str) -> dict[str, Any]:
    seconds = ctx.profile.peer_enqueue_s
    async with ctx.databases.empty(peer) as url:
        await install(peer, url)
        options = [f"--seconds={seconds}", f"--concurrency={ENQUEUE_CONCURRENCY}"]
        code, out = await run_command(
            command(peer, "enqueue", url, *options), limit_s=seconds + 120
        )
    lines = [line for line in out.splitlines() if line.startswith("PEER_JSON ")]
    if code != 0 or not lines:
        raise RuntimeError(f"{peer} enqueue failed:\n{out[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("PEER_JSON "))
    return result


async def peer_drain(ctx: Context, peer: str, jobs: int, knob: int) -> dict[str, Any]:
    async with ctx.databases.empty(peer) as url:
        await install(peer, url)
        code, out = await run_command(command(peer, "seed", url, f"--jobs={jobs}"), limit_s=600)
        if code != 0:
            raise RuntimeError(f"{peer} seed failed:\n{out[-2000:]}")
        await _execute(url, query("peers.sql", f"{peer}_vacuum"))
        async with running(f"{peer}_worker", command(peer, "work", url, f"--knob={knob}")):
            remaining = query("peers.sql", f"{peer}_remaining")
            return await time_drain(url, remaining, jobs, limit_s=60 + jobs / 50)


async def peer_latency(ctx: Context, peer: str, knob: int) -> dict[str, Any]:
    p = ctx.profile
    record = WORK_DIR / f"{peer}_latencies.json"
    record.unlink(missing_ok=True)
    remaining = query("peers.sql", f"{peer}_remaining")
    async with ctx.databases.empty(peer) as url:
        await install(peer, url)
        # One job first: once it is done, the worker is listening.
        await run_command(command(peer, "seed", url, "--jobs=1"), limit_s=120)
        worker = command(peer, "work", url, f"--knob={knob}", f"--record={record}")
        async with running(f"{peer}_worker", worker):
            await _wait_empty(url, remaining, limit_s=60)
            options = [f"--rate={p.peer_latency_rate}", f"--seconds={p.peer_latency_s}"]
            code, out = await run_command(
                command(peer, "produce", url, *options), limit_s=p.peer_latency_s + 120
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
    work_rows = _work_rows(ctx, raw, service_rates, summary)
    settings = [f"{peer}: {summary[peer]['settings']}" for peer in PEERS]
    notes = [
        "Side by side: our numbers include real work (a message row, a conversation upsert, "
        "the event marked processed, per event); the peers' jobs there are no-op jobs. "
        "The same-work table sets them beside peers' jobs that do our work, and beside the "
        "SQL-only limit.",
        "Peer settings: " + "; ".join(settings) + "; their same-work jobs run at the same "
        "setting, plus an asyncpg pool of 10 connections (the service's pool size) that the "
        "jobs share.",
        "Enqueue: one job per transaction, 64 concurrent callers over a pool of 10 "
        "connections. The service's figure is scenario 1's ingest (HTTP included, group commit).",
        "Latency: peers from the job's scheduled enqueue time to the no-op job starting in "
        "the worker; the service from the webhook's scheduled send time to its message's "
        "commit (scenario 2, NOTIFY, same rate).",
    ]
    notes += _work_notes(ctx)
    if p.procrastinate_drain_jobs != p.peer_drain_jobs:
        notes.append(
            f"procrastinate drained {p.procrastinate_drain_jobs:,} no-op jobs per repeat (the "
            f"others {p.peer_drain_jobs:,}) to keep this run short; each drain's rate is taken "
            "over its own window, so the ratios pair drains of different sizes."
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
        ),
        table(
            "Drain, the same work",
            [
                "system",
                "each job (or event) does",
                "drained per repeat",
                "drain events or jobs/s (abs)",
                "service drain / this (ratio)",
            ],
            work_rows,
        ),
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
            "Drain against the same work, each on a fresh migrated database (the service's "
            "tables, indexes and triggers) whose events were inserted in bulk as for scenario 3: "
            f"{WORK_DOES}; {LIMIT_DOES}. "
            f"{p.repeats} repeats, systems in rotating order; medians."
        ),
        tables=tables,
        raw=raw,
        summary=summary,
        notes=notes,
    )


SERVICE_DOES = (
    "its batch: a message per event, new conversations, counts and last activity, "
    f"the events processed; {LIMIT_BATCH} events a transaction (after the claim's own), "
    "two batches in flight (default settings)"
)
WORK_DOES = (
    "a same-work job (pgqueuer, procrastinate; bench/peers/work.py) gets one event's "
    "fields as its payload (event id, type, from, to, provider id, body, attachments, "
    "timestamp), checks them with the service's rules and, in one statement and so one "
    "transaction of its own (bench/sql/peer_work.sql same_work), inserts the event's "
    "message, upserts its conversation (created with a count of 1, or count + 1; last "
    "activity the later of the stored one and the message's timestamp) and marks the "
    "event processed (status and processed_at)"
)
LIMIT_DOES = (
    "the SQL-only limit is one CALL of a plpgsql procedure (bench/sql/sql_limit.sql) that "
    f"loops over batches of {LIMIT_BATCH} events, oldest first, and in each batch's "
    "transaction writes what the service's batch writes, set-based, in the worker's order "
    "(new conversations, messages, events processed with the claim's columns, "
    "conversation counts and last activity), then COMMITs; no Python in the loop, "
    "timed from outside by the same polls"
)


def _work_rows(
    ctx: Context,
    raw: dict[str, dict[str, list[dict[str, Any]]]],
    service_rates: list[float],
    summary: dict[str, Any],
) -> list[list[Any]]:
    """The same-work table: the service's drain beside every other drain of this
    scenario; summary gets pgqueuer_work, procrastinate_work and sql_limit."""
    drains = raw["drain"]

    def vs(name: str) -> float:
        rates = [r["rate"] for r in drains[name]]
        return paired_ratio(service_rates, rates) if service_rates else math.nan

    for name in (*WORK, SQL_LIMIT):
        summary[name] = {
            "drain_jobs_per_s": median([r["rate"] for r in drains[name]]),
            "drain_jobs": _drain_jobs(ctx, name),
            "service_drain_vs_this": vs(name),
        }
    summary[SQL_LIMIT]["call_events_per_s"] = median([r["call_rate"] for r in drains[SQL_LIMIT]])
    rows: list[list[Any]] = [
        [
            "messaging-service worker (1 process)",
            SERVICE_DOES,
            _drain_jobs(ctx, SERVICE),
            summary[SERVICE]["drain_jobs_per_s"],
            1.0 if service_rates else math.nan,
        ]
    ]
    for peer in PEERS:
        rows.append(
            [
                f"{peer} no-op job",
                "nothing",
                summary[peer]["drain_jobs"],
                summary[peer]["drain_jobs_per_s"],
                summary[peer]["service_drain_vs_this"],
            ]
        )
    for name, peer in WORK.items():
        rows.append(
            [
                f"{peer} same-work job",
                "one event: message, conversation upsert, event processed; one transaction",
                summary[name]["drain_jobs"],
                summary[name]["drain_jobs_per_s"],
                summary[name]["service_drain_vs_this"],
            ]
        )
    rows.append(
        [
            "SQL-only limit (plpgsql)",
            f"the service's batch, set-based, {LIMIT_BATCH} events a transaction",
            summary[SQL_LIMIT]["drain_jobs"],
            summary[SQL_LIMIT]["drain_jobs_per_s"],
            summary[SQL_LIMIT]["service_drain_vs_this"],
        ]
    )
    return rows


def _work_notes(ctx: Context) -> list[str]:
    p = ctx.profile
    return [
        "Same work: the service's worker and the SQL-only limit both leave each event with "
        "the claim's columns set (processor_id, claimed_at, attempt_count 1); a peer's job "
        "does not write them (the peer's own queue row is its claim). The limit updates each "
        "event row once, where the worker claims in a transaction of its own first and marks "
        "processed in the batch's: the limit does less than the worker, as a limit should. "
        "But it runs on one connection, one batch at a time, where the worker keeps two "
        "batches in flight on two connections (MESSAGING_BATCHES_IN_FLIGHT=2): on this "
        "machine's 2 cores the worker can come close to it, or pass it.",
        "Every same-work and SQL-only drain is checked like the service's: every event "
        "processed, one message each, conversation counts adding up to the events.",
        f"Same-work jobs per repeat: pgqueuer {p.peer_work_jobs:,}, procrastinate "
        f"{p.procrastinate_work_jobs:,} (one transaction per job); the service and the "
        f"SQL-only limit {p.peer_drain_jobs:,} events. The limit's rate from its whole CALL "
        f"(start to return) is in the summary (call_events_per_s).",
    ]


def _service_row(ctx: Context, service_rates: list[float], summary: dict[str, Any]) -> list[Any]:
    ingest = ctx.done.get("ingest", {}).get("summary", {}).get("service", {})
    # Webhook -> message commit at the peers' rate: section 3's figure (default
    # settings), else section 6's NOTIFY row, whichever ran before this one.
    rate = str(ctx.profile.peer_latency_rate)
    latency = ctx.done.get("latency", {}).get("summary", {}).get(rate, {})
    notify = ctx.done.get("end_to_end", {}).get("summary", {}).get(rate, {}).get("notify", {})
    summary[SERVICE] = {
        "drain_jobs_per_s": median(service_rates) if service_rates else math.nan,
        "enqueue_jobs_per_s": ingest.get("rps", math.nan),
        "latency_p50_ms": latency.get("commit_p50_ms", notify.get("p50_ms", math.nan)),
        "latency_p99_ms": latency.get("commit_p99_ms", notify.get("p99_ms", math.nan)),
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
