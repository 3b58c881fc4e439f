"""Section 12, many worker processes (issue 14): section 7's drain and section
2's split pipeline (`messaging serve --no-worker` plus `messaging worker`) with
1, 2 and 4 worker processes, each with every process's DATABASE_URL straight to
PostgreSQL and through PgBouncer in transaction mode. The LISTEN connections go
straight to PostgreSQL either way (MESSAGING_LISTEN_DATABASE_URL): a LISTEN
cannot go through a transaction pooler. Every figure is set against one direct
worker measured in the same repeat.

Where the ceiling is comes from what bench/watch.py samples while each variant
runs: the CPU of PostgreSQL, of the service's processes, of PgBouncer and of the
rest of the machine; the time they wait for a core; what the database's
backends wait on; the connections held.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import psutil

from bench.context import Context
from bench.scenarios.common import rotated, section, skipped, table
from bench.scenarios.drain import WORKER_MISSING, drain_service
from bench.scenarios.pipeline import pipeline_service
from bench.stats import median, paired_ratio
from bench.watch import QUEUE_ROLES, SAMPLE_S, WAITS, Samples, postmaster_of, watching

TITLE = "12. Worker processes, direct and through PgBouncer"

DIRECT, POOLED = "direct", "PgBouncer"
# Work left at the end of a pipeline's load, in seconds at the measured rate,
# past which its workers count as fallen behind the API.
BEHIND_S = 1.0
# The CPU figures: the machine (every process, the other tenants of this shared
# machine included), PostgreSQL, the service's processes by role, PgBouncer, the
# bench with its load generator, everything else, and the time stolen.
CPU_ROLES = ("machine", "postgres", "api", "worker", "pgbouncer", "bench", "others", "steal")


@dataclass(frozen=True)
class Variant:
    workers: int
    route: str  # DIRECT or POOLED

    @property
    def label(self) -> str:
        return f"{self.workers} {self.route}"


BASELINE = Variant(1, DIRECT)


@dataclass(frozen=True)
class Pooler:
    """The running PgBouncer: how the processes reach a database through it."""

    bouncer: Any  # tests.support.servers.Bouncer
    user: str
    pid: int | None  # pgbouncer's own process (under root, runuser's child)
    version: str

    def database_env(self, url: str) -> dict[str, str]:
        """Pools through PgBouncer, the LISTEN connection straight to PostgreSQL."""
        name = urlsplit(url).path.lstrip("/")
        return {
            "DATABASE_URL": self.bouncer.url(name, self.user),
            "MESSAGING_LISTEN_DATABASE_URL": url,
        }


async def run(ctx: Context) -> dict[str, Any]:
    if not ctx.can.worker:
        return skipped(TITLE, WORKER_MISSING)
    p = ctx.profile
    postmaster = await postmaster_of(ctx.server.url)
    with _pgbouncer(ctx) as (pooler, missing):
        routes = [DIRECT] + ([POOLED] if pooler else [])
        variants = [Variant(w, r) for w in p.scale_workers for r in routes]
        raw: dict[str, dict[str, list[dict[str, Any]]]] = {
            part: {v.label: [] for v in variants} for part in ("drain", "pipeline")
        }
        for repeat in range(p.repeats):
            for v in rotated(variants, repeat):
                r = await _measured(_drain(ctx, v, pooler, postmaster), v)
                raw["drain"][v.label].append(r)
                print(f"  scale drain {v.label:13} repeat {repeat + 1}: {_line(r)}", flush=True)
            for v in rotated(variants, repeat):
                r = await _measured(_pipeline(ctx, v, pooler, postmaster), v)
                raw["pipeline"][v.label].append(r)
                print(f"  scale pipeline {v.label:10} repeat {repeat + 1}: {_line(r)}", flush=True)
        bouncer_errors = _log_errors(pooler.bouncer.log()) if pooler else []
    return _section(ctx, variants, raw, pooler, missing, bouncer_errors)


async def _measured(measurement: Any, variant: Variant) -> dict[str, Any]:
    """A measurement's result; through PgBouncer, a failure is recorded (and
    reported) instead of ending the section, whose direct part still stands."""
    if variant.route == DIRECT:
        result: dict[str, Any] = await measurement
        return result
    try:
        result = await measurement
    except Exception as exc:  # reported in the section
        return {"error": f"{type(exc).__name__}: {exc}"}
    return result


def _line(r: dict[str, Any]) -> str:
    if "error" in r:
        return f"failed: {r['error']}"
    cores = ", ".join(f"{k} {v:.2f}" for k, v in r["cores"].items() if not math.isnan(v))
    rate = (
        f"{r['rate']:8.0f} events/s"
        if "rate" in r
        else f"{r['processed_per_s']:8.0f} processed/s ({r['rps']:.0f} accepted, "
        f"backlog {r['backlog_s']:.2f} s, errors {r['errors']})"
    )
    return f"{rate}; cores: {cores}; pool connections {r['pool_backends']}"


# --- The two measurements -----------------------------------------------------


async def _drain(
    ctx: Context, variant: Variant, pooler: Pooler | None, postmaster: psutil.Process | None
) -> dict[str, Any]:
    samples: list[Samples] = []
    result = await drain_service(
        ctx,
        ctx.profile.scale_drain_events,
        variant.workers,
        database_env=pooler.database_env if pooler and variant.route == POOLED else None,
        watch=lambda url, pids: watching(
            url, {"worker": pids}, postmaster, _bouncer(pooler), samples
        ),
    )
    s = samples[0]
    # The drain's rate is taken over its window (bench/scenarios/draining.py),
    # which ends at the last poll, just before the watch ends: the same window.
    return result | s.figures(s.ended - result["window_s"], s.ended)


async def _pipeline(
    ctx: Context, variant: Variant, pooler: Pooler | None, postmaster: psutil.Process | None
) -> dict[str, Any]:
    samples: list[Samples] = []
    result = await pipeline_service(
        ctx,
        "serve_split",
        workers=variant.workers,
        seconds=ctx.profile.scale_pipeline_s,
        database_env=pooler.database_env if pooler and variant.route == POOLED else None,
        watch=lambda url, pids: watching(url, pids, postmaster, _bouncer(pooler), samples),
    )
    s = samples[0]
    # The load's window and the drain of what it left behind.
    return result | s.figures(s.started, s.ended)


# --- PgBouncer ----------------------------------------------------------------


@contextmanager
def _pgbouncer(ctx: Context) -> Iterator[tuple[Pooler | None, str | None]]:
    """PgBouncer in transaction mode in front of the bench's server, with the
    profile's server connections per database (tests/support/servers.py, the
    one the tests start); (None, why) where it cannot run."""
    try:
        from tests.pg import server_from_url
        from tests.support.servers import PGBOUNCER, PGBOUNCER_MISSING, pgbouncer
    except ImportError as exc:
        yield None, f"tests/support/servers.py cannot be imported here ({exc}): the dev extra"
        return
    if PGBOUNCER is None:
        yield None, PGBOUNCER_MISSING
        return
    server = server_from_url(ctx.server.url)
    version = subprocess.run(
        [PGBOUNCER, "--version"], capture_output=True, text=True, check=False
    ).stdout.split("\n", 1)[0]
    with pgbouncer(server, pool_size=ctx.profile.scale_pool_size) as bouncer:
        ini = str(bouncer.log_path.parent / "pgbouncer.ini")
        pid = next(
            (
                proc.pid
                for proc in psutil.process_iter(["name", "cmdline"])
                if proc.info["name"] == "pgbouncer" and ini in (proc.info["cmdline"] or [])
            ),
            None,
        )
        yield Pooler(bouncer, server.user, pid, version), None


def _bouncer(pooler: Pooler | None) -> tuple[int | None, int | None]:
    """PgBouncer's pid and port for the sampling."""
    return (pooler.pid, pooler.bouncer.port) if pooler else (None, None)


def _log_errors(log: str) -> list[str]:
    """PgBouncer's log lines that report an error or a warning."""
    return [line for line in log.splitlines() if " ERROR " in line or " WARNING " in line]


# --- The report ---------------------------------------------------------------


def _ok(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in runs if "error" not in r]


def _values(runs: list[dict[str, Any]], key: str) -> list[float]:
    """One value per repeat (NaN for a failed one, so that repeats stay paired)."""
    return [math.nan if "error" in r or r[key] is None else float(r[key]) for r in runs]


def _summary(
    variants: list[Variant], raw: dict[str, dict[str, list[dict[str, Any]]]]
) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for part, rate_key in (("drain", "rate"), ("pipeline", "processed_per_s")):
        one = _values(raw[part][BASELINE.label], rate_key)
        per: dict[str, Any] = {}
        for v in variants:
            runs = raw[part][v.label]
            ok = _ok(runs)
            rates = _values(runs, rate_key)
            s: dict[str, Any] = {
                "workers": v.workers,
                "route": v.route,
                "per_s": median(rates),
                "vs_one_direct": paired_ratio(rates, one),
                "cores": {
                    role: median([r["cores"].get(role, math.nan) for r in ok]) for role in CPU_ROLES
                },
                "waits": {w: median([r["waits"][w] for r in ok]) for w in WAITS},
                "queue": {
                    role: median([r["cores"].get(f"{role}_queue", math.nan) for r in ok])
                    for role in QUEUE_ROLES
                },
                "pool_backends_max": max((r["pool_backends"] for r in ok), default=None),
                "bouncer_clients_max": max((r["bouncer_clients"] for r in ok), default=None),
                "failed": [r["error"] for r in runs if "error" in r],
            }
            if part == "pipeline":
                for key in ("rps", "backlog_s", "transactions_per_webhook", "ingest_batch_mean"):
                    s[key] = median(_values(runs, key))
                s["errors"] = sum(int(r["errors"]) for r in ok)
                s["max_backlog_s"] = max((r["backlog_s"] for r in ok), default=None)
                # The repeats whose workers fell behind the API.
                s["behind"] = [
                    {
                        "backlog_s": r["backlog_s"],
                        "processed_per_s": r["processed_per_s"],
                        "rps": r["rps"],
                        "worker_cores": r["cores"]["worker"],
                        "worker_queue": r["cores"]["worker_queue"],
                    }
                    for r in ok
                    if r["backlog_s"] > BEHIND_S
                ]
            per[v.label] = s
        summary[part] = per
    return summary


def _section(
    ctx: Context,
    variants: list[Variant],
    raw: dict[str, dict[str, list[dict[str, Any]]]],
    pooler: Pooler | None,
    missing: str | None,
    bouncer_errors: list[str],
) -> dict[str, Any]:
    p = ctx.profile
    cores = os.cpu_count() or 0
    summary = _summary(variants, raw)
    summary["cores"] = cores
    summary["pool_size"] = p.scale_pool_size if pooler else None
    summary["pgbouncer"] = pooler.version if pooler else missing
    summary["pgbouncer_log"] = _distinct(bouncer_errors)
    drain, pipe = summary["drain"], summary["pipeline"]

    def conns(s: dict[str, Any]) -> str:
        clients = f" ({s['bouncer_clients_max']} clients)" if s["route"] == POOLED else ""
        return f"{s['pool_backends_max']}{clients}"

    throughput = [
        [
            v.workers,
            v.route,
            drain[v.label]["vs_one_direct"],
            drain[v.label]["per_s"],
            pipe[v.label]["vs_one_direct"],
            pipe[v.label]["per_s"],
            pipe[v.label]["rps"],
            pipe[v.label]["backlog_s"],
            pipe[v.label]["errors"],
            f"{conns(drain[v.label])} / {conns(pipe[v.label])}",
        ]
        for v in variants
    ]
    cpu_rows, wait_rows, queue_rows = [], [], []
    for part, figures in (("drain", drain), ("pipeline", pipe)):
        for v in variants:
            c = figures[v.label]["cores"]
            cpu_rows.append(
                [
                    part,
                    v.workers,
                    v.route,
                    c["machine"],
                    c["postgres"],
                    c["api"] if part == "pipeline" else "-",
                    c["worker"],
                    c["pgbouncer"] if v.route == POOLED else "-",
                    c["bench"],
                    c["others"],
                    c["steal"],
                ]
            )
            w = figures[v.label]["waits"]
            wait_rows.append([part, v.workers, v.route, *(w[k] for k in WAITS)])
            q = figures[v.label]["queue"]
            queue_rows.append(
                [
                    part,
                    v.workers,
                    v.route,
                    q["postgres"],
                    q["api"] if part == "pipeline" else "-",
                    q["worker"],
                ]
            )
    pooled_what = (
        f"Through PgBouncer ({pooler.version}, Debian's, in transaction mode, started by "
        "tests/support/servers.py as the tests start it): every process's DATABASE_URL "
        "names PgBouncer on 127.0.0.1 (TCP), its MESSAGING_LISTEN_DATABASE_URL PostgreSQL "
        f"(a LISTEN cannot be pooled). PgBouncer keeps at most {p.scale_pool_size} server "
        "connections to the database: fewer than its clients once there are two workers "
        "(the counts are in the table), as a pooler in production has; and still "
        f"{p.scale_pool_size // max(cores, 1)} per core of this {cores}-core machine, so "
        "that a connection waiting on its commit's flush does not leave a core without "
        "work. "
        if pooler
        else f"**Through PgBouncer: skipped**: {missing}. "
    )
    what = (
        f"Section 7's drain ({p.scale_drain_events:,} events seeded with SQL, then N "
        "`messaging worker` processes; every event checked to have made one message) and "
        "section 2's split pipeline (one `messaging serve --no-worker` and N `messaging "
        f"worker` processes, default settings, {p.ingest_connections} connections of "
        f"closed-loop load (wrk) for {p.scale_pipeline_s} s after {p.warmup_s} s of "
        "warm-up; processed/s counts the messages committed in the window, the backlog "
        "what was left unprocessed at its end, in seconds of work), with N = "
        + ", ".join(str(w) for w in p.scale_workers)
        + ". Direct: every connection on PostgreSQL's Unix socket. "
        + pooled_what
        + f"{p.repeats} repeats, the {len(variants)} variants of each part in rotating "
        "order, a fresh database each; medians, and ratios to one direct worker of the "
        "same repeat. While each ran, sampled every "
        f"{SAMPLE_S * 1000:.0f} ms over the drain's timed window, and over the pipeline's "
        "load and the drain of its backlog: cores busy (CPU seconds per second, from "
        "/proc) of PostgreSQL (the postmaster's whole process tree), of the service's "
        "processes, of PgBouncer, of the bench itself with its load generator, and of "
        "everything else on this shared machine (the machine's busy time less all "
        "those); stolen is time the hypervisor gave to other machines; and what the "
        "database's active backends were doing (pg_stat_activity's wait events, the "
        "average number of backends in each state). Connections: the most backends the "
        "service's pools held on PostgreSQL (through PgBouncer, its server connections; "
        "the LISTEN connections, one per process, are not counted), and PgBouncer's "
        "clients."
    )
    notes = _ceiling(ctx, variants, summary, cores)
    failures = {
        f"{part} {label}": s["failed"][0]
        for part, figures in (("drain", drain), ("pipeline", pipe))
        for label, s in figures.items()
        if s["failed"]
    }
    if failures:
        notes.append(
            "Failed through PgBouncer (those repeats are left out): "
            + "; ".join(f"{k}: {v}" for k, v in failures.items())
        )
    if pooler:
        notes.append(_bouncer_log_note(summary["pgbouncer_log"]))
    return section(
        TITLE,
        what=what,
        tables=[
            table(
                "Throughput by worker processes, against one direct worker",
                [
                    "worker processes",
                    "path",
                    "drain vs 1 direct (ratio)",
                    "drain events/s (abs)",
                    "pipeline processed/s vs 1 direct (ratio)",
                    "pipeline processed/s (abs)",
                    "accepted req/s (abs)",
                    "backlog at end, s of work (abs)",
                    "errors",
                    "pool connections on PostgreSQL, most (drain / pipeline)",
                ],
                throughput,
            ),
            table(
                f"Where the CPU went: cores busy, of {cores} (abs)",
                [
                    "part",
                    "worker processes",
                    "path",
                    "machine",
                    "PostgreSQL",
                    "API",
                    "workers",
                    "PgBouncer",
                    "bench and load generator",
                    "everything else",
                    "stolen",
                ],
                cpu_rows,
            ),
            table(
                "Ready to run, waiting for a core: seconds per second (abs, run delay from "
                "/proc/<pid>/schedstat)",
                ["part", "worker processes", "path", "PostgreSQL", "API", "workers"],
                queue_rows,
            ),
            table(
                "What the database's backends were doing: average active backends (abs)",
                ["part", "worker processes", "path", *WAITS.values()],
                wait_rows,
            ),
        ],
        raw=raw,
        summary=summary,
        notes=notes,
    )


# "2026-12-06 14:16:30.232 UTC [17328] WARNING S-0x55...: db/user@unix:5432 message"
_LOG_LINE = re.compile(r" (ERROR|WARNING) (?:[CS]-0x[0-9a-f]+: \S+ )?(.*)$")
# A server connection PostgreSQL ended while no client used it: after each
# measurement its database is dropped WITH (FORCE), and the FATAL that ends
# PgBouncer's idle server connections to it arrives on unlinked connections.
_DROPPED = "WARNING got packet 'E' from server when not linked"


def _each(runs: list[dict[str, Any]], key: str, form: str) -> str:
    """One figure per run: "a", "a and b", "a, b and c"."""
    values = [form.format(r[key]) for r in runs]
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1]


def _distinct(lines: list[str]) -> dict[str, int]:
    """PgBouncer's log lines by message, without their time, pid and
    connection: how often each came."""
    counts: dict[str, int] = {}
    for line in lines:
        found = _LOG_LINE.search(line)
        message = f"{found.group(1)} {found.group(2)}" if found else line
        counts[message] = counts.get(message, 0) + 1
    return counts


def _bouncer_log_note(counts: dict[str, int]) -> str:
    if not counts:
        return "PgBouncer's log: no error or warning over the section."
    listed = "; ".join(
        f"`{m[:120]}` x{n}"
        + (
            " (its idle server connections to a measurement's database, ended by the "
            "database's DROP ... WITH (FORCE) after the measurement)"
            if m == _DROPPED
            else ""
        )
        for m, n in sorted(counts.items(), key=lambda kv: -kv[1])
    )
    return f"PgBouncer's log, errors and warnings over the section: {listed}."


def _ceiling(
    ctx: Context, variants: list[Variant], summary: dict[str, Any], cores: int
) -> list[str]:
    """Where the ceiling is, in the words this run's numbers allow."""
    drain, pipe = summary["drain"], summary["pipeline"]
    counts = sorted({v.workers for v in variants})
    most = max(counts)
    routes = [r for r in (DIRECT, POOLED) if any(v.route == r for v in variants)]

    def ratios(part: dict[str, Any], route: str) -> str:
        return ", ".join(f"{w}: {part[f'{w} {route}']['vs_one_direct']:.2f}" for w in counts)

    notes = [
        "**Scaling** (ratios to one direct worker, by worker processes). Drain: "
        + "; ".join(f"{route} {ratios(drain, route)}" for route in routes)
        + ". Pipeline processed/s: "
        + "; ".join(f"{route} {ratios(pipe, route)}" for route in routes)
        + f". One direct worker: {drain[BASELINE.label]['per_s']:,.0f} events/s drained, "
        f"{pipe[BASELINE.label]['per_s']:,.0f} webhooks/s processed (abs)."
    ]

    one, top = drain[BASELINE.label], drain[f"{most} {DIRECT}"]
    c1, cn = one["cores"], top["cores"]
    us_pg = c1["postgres"] / one["per_s"] * 1e6
    us_worker = c1["worker"] / one["per_s"] * 1e6
    busiest = max(drain[v.label]["cores"]["machine"] for v in variants)
    cpu = (
        "**Where the ceiling is.** The drain with one direct worker kept "
        f"{c1['machine']:.2f} of the {cores} cores busy (PostgreSQL {c1['postgres']:.2f}, the "
        f"worker {c1['worker']:.2f}, everything else {max(c1['others'], 0):.2f}); with "
        f"{most} workers "
        f"{cn['machine']:.2f} (PostgreSQL {cn['postgres']:.2f}, the workers "
        f"{cn['worker']:.2f}), and the database's backends were running or waiting for a "
        f"core {top['waits']['cpu']:.2f} at a time; PostgreSQL's processes waited for a "
        f"core {one['queue']['postgres']:.2f} s per second with one worker and "
        f"{top['queue']['postgres']:.2f} with {most}. Per drained event PostgreSQL spent "
        f"{us_pg:.0f} us of CPU and a worker {us_worker:.0f} us with one worker; with "
        f"{most}, PostgreSQL {cn['postgres'] / top['per_s'] * 1e6:.0f} us, its backends "
        + (
            "waiting on one another more"
            if top["waits"]["rows"] + top["waits"]["lwlock"]
            > one["waits"]["rows"] + one["waits"]["lwlock"]
            else "waiting on one another no more"
        )
        + f" (row locks {top['waits']['rows']:.2f}, other LWLocks "
        f"{top['waits']['lwlock']:.2f} at a time, against {one['waits']['rows']:.2f} and "
        f"{one['waits']['lwlock']:.2f}). "
    )
    if cn["machine"] >= 0.9 * cores:
        cpu += (
            f"With {most} workers the machine's cores were busy: here the ceiling is the "
            "CPU, most of it PostgreSQL's. "
        )
        if c1["machine"] < 0.9 * cores:
            cpu += (
                f"One worker left {cores - c1['machine']:.2f} cores idle, which more workers "
                f"can use (drain, direct: {ratios(drain, DIRECT)}); once the cores are busy, "
                "more workers share them rather than add to them."
            )
        else:
            cpu += "More workers share the cores rather than add to them."
    else:
        waits = {k: v for k, v in top["waits"].items() if k != "cpu"}
        wait = max(waits, key=lambda k: waits[k])
        cpu += (
            f"The cores were never all busy (at most {busiest:.2f} of {cores}): the "
            f"backends' most common wait with {most} workers was {WAITS[wait]}: "
            f"{waits[wait]:.2f} at a time."
        )
    notes.append(cpu)

    p1, pn = pipe[BASELINE.label], pipe[f"{most} {DIRECT}"]
    direct = [pipe[f"{w} {DIRECT}"] for w in counts]

    def trend(key: str, role: str | None = None) -> str:
        values = [f["cores"][role] if role else f[key] for f in direct]
        return " -> ".join(f"{v:,.0f}" if v >= 100 else f"{v:.2f}" for v in values)

    behind = {label: f["behind"] for label, f in pipe.items() if f["behind"]}
    kept_up = [f["max_backlog_s"] for label, f in pipe.items() if label not in behind]
    if behind:
        pipeline = (
            "**The pipeline.** The workers fell behind the API in some repeats: "
            + "; ".join(
                f"{label}, {len(runs)} of {ctx.profile.repeats} ("
                + _each(runs, "backlog_s", "{:.2f}")
                + " s of work left at the end, "
                + _each(runs, "processed_per_s", "{:,.0f}")
                + " processed/s of "
                + _each(runs, "rps", "{:,.0f}")
                + " accepted, the workers running "
                + _each(runs, "worker_cores", "{:.2f}")
                + " cores and waiting for one "
                + _each(runs, "worker_queue", "{:.2f}")
                + " s per second"
                + (
                    ", idle the rest: not for want of CPU)"
                    if all(
                        r["worker_cores"] + r["worker_queue"] < 0.5 * pipe[label]["workers"]
                        for r in runs
                    )
                    else ")"
                )
                for label, runs in behind.items()
            )
            + (
                f"; every other variant kept up in every repeat (at most "
                f"{max(kept_up):.2f} s left)."
                if kept_up
                else "."
            )
            + " Where they kept up, processed/s is what the API accepted."
        )
    else:
        pipeline = (
            "**The pipeline.** The workers kept up in every repeat (at most "
            f"{max(kept_up):.2f} s of work left at the end): processed/s is what the API "
            "accepted."
        )
    pipeline += (
        f" Direct, from {' to '.join(str(n) for n in counts)} workers: the API's cores "
        f"{trend('', 'api')}, PostgreSQL's {trend('', 'postgres')}, the workers' "
        f"{trend('', 'worker')}, the machine's {trend('', 'machine')}; accepted req/s "
        f"{trend('rps')}."
    )
    accepted = [f["rps"] for f in direct]
    above_one = any(f["vs_one_direct"] > 1 for label, f in pipe.items() if label != BASELINE.label)
    if (
        BASELINE.label in behind
        and above_one
        and all(a > b for a, b in itertools.pairwise(accepted))
    ):
        pipeline += (
            " The pipeline's ratios to one direct worker are taken against those repeats: "
            "where more workers score above 1, it is the one worker falling behind, not "
            "more capacity (the API accepted less with each worker added)."
        )
    api_bound = pn["cores"]["api"] < p1["cores"]["api"] and pn["rps"] < p1["rps"]
    if api_bound:
        pipeline += (
            " Workers beyond those that keep up take cores from the API, so the API "
            "accepts less: here one API process, not the workers, sets the pipeline's rate."
        )
    notes.append(pipeline)

    notify_drain = max(drain[v.label]["waits"]["notify"] for v in variants)
    commits = p1["transactions_per_webhook"] * p1["rps"]
    in_drains = (
        "none in the drains"
        if notify_drain == 0
        else f"at most {notify_drain:.2f} at a time in the drains"
    )
    lock = (
        f"**NOTIFY's lock.** Backends waiting on it: {in_drains}; in the pipeline "
        f"{p1['waits']['notify']:.2f} at a time with one direct worker and "
        f"{pn['waits']['notify']:.2f} with {most}, while the database committed about "
        f"{commits:,.0f} transactions/s of every kind (pg_stat_database, one direct "
        f"worker; the API's group commits carried {p1['ingest_batch_mean']:.0f} webhooks "
        "each)."
    )
    pgbench = ctx.done.get("pgbench", {})
    best = max(
        pgbench.get("summary", {}).items(),
        key=lambda kv: kv[1].get("notify_tps") or 0,
        default=None,
    )
    share = 0.0
    if best and best[1].get("notify_tps"):
        clients, figures = best
        source = pgbench.get("run", {}).get("started_at", "this run")
        share = commits / figures["notify_tps"]
        lock += (
            f" Section 8 measured {figures['notify_tps']:,.0f} one-row NOTIFYing commits/s "
            f"at best ({clients} clients; run of {source}): the pipeline's commits are "
            f"{share:.0%} of that"
            + (
                ", so the lock queues commits here without being what bounds the rate"
                if share < 0.5
                else ", near enough for the lock to be part of the ceiling"
            )
            + (
                "; the cores are."
                if share < 0.5
                and min(p1["cores"]["machine"], pn["cores"]["machine"]) >= 0.9 * cores
                else "."
            )
        )
    notes.append(lock)

    if POOLED in routes:
        pooled = [drain[f"{w} {POOLED}"] for w in counts] + [pipe[f"{w} {POOLED}"] for w in counts]
        pn_pooled = pipe[f"{most} {POOLED}"]
        notes.append(
            f"**PgBouncer.** It used at most "
            f"{max(s['cores']['pgbouncer'] for s in pooled):.2f} cores of its own, and held "
            f"at most {max(s['pool_backends_max'] or 0 for s in pooled)} server connections "
            f"(of {summary['pool_size']}) for up to "
            f"{max(s['bouncer_clients_max'] or 0 for s in pooled)} clients. What it costs "
            "shows in the backends: waiting for the client's next message mid-transaction "
            f"{pn_pooled['waits']['client']:.2f} at a time through it against "
            f"{pn['waits']['client']:.2f} direct (pipeline, {most} workers), a server "
            "connection held idle for each round trip through PgBouncer; and behind a "
            "pooler asyncpg prepares every statement anew, a round trip more for each one "
            "with arguments."
        )

    us_pg_most = cn["postgres"] / top["per_s"] * 1e6
    bound = cores * 1e6 / (us_pg + us_worker)
    notes.append(
        "**The network** is not in these figures: every hop is on one machine (the service "
        "on PostgreSQL's Unix socket, PgBouncer on TCP loopback). Each round trip above is "
        "a loopback one; across a network every one would be longer, and a pooled server "
        "connection would be held idle through each."
    )
    following = (
        f" The NOTIFY lock comes after it: at {1 / share:.1f}x these commits/s the pipeline "
        "would reach the rate section 8 measured for one-row NOTIFYing commits (in its "
        "own run, which may have had another machine: the report's Machine section names "
        "the latest run's)."
        if share
        else ""
    )
    notes.append(
        f"**The next machine.** Here PostgreSQL and the workers share {cores} cores, which "
        f"at {us_pg:.0f} + {us_worker:.0f} us per event bounds the drain near "
        f"{bound:,.0f} events/s (measured at best "
        f"{max(drain[v.label]['per_s'] for v in variants):,.0f}). With the workers on "
        "hosts of their own, PostgreSQL's CPU alone bounds it near "
        f"{cores * 1e6 / us_pg:,.0f} events/s at one worker's {us_pg:.0f} us per event, "
        f"{cores * 1e6 / us_pg_most:,.0f} at {most} workers' {us_pg_most:.0f} us; more cores "
        "raise that only as far as PostgreSQL's work spreads over them, which a "
        f"{cores}-core machine cannot show."
        + (
            " The pipeline needs the API on cores of its own first: it set the rate here."
            if api_bound
            else ""
        )
        + following
    )
    return notes
