"""Scenario 3, latency under load: the same open-loop client (bench/loadgen.py)
at each rate against the bare handler (bench/bare_server.py) and then against
`messaging serve` with default settings (API and worker in one process, as
`make run` starts it), back to back in each repeat.

The service's 202 p99 and its webhook -> message commit p99 are read as ratios
to the bare handler's 202 p99 of the same repeat: the bare handler is what the
framework and this machine cost at that moment. Beside them, a one-row commit
(bench/commit_probe.py) prices the database's part of the absolute figures.
"""

from __future__ import annotations

from typing import Any

from bench.commit_probe import ROWS, one_row_commits
from bench.context import Context
from bench.loadgen import WARMUP_S
from bench.scenarios.common import baseline, section, service, skipped, table
from bench.scenarios.open_loop import commit_latencies, drive, responses
from bench.stats import median, paired_ratio

TITLE = "3. Latency under load"
WORKER_MISSING = "worker not available (`messaging worker --help` fails on this branch)"
# The rate whose bare 202 p50 stands for "a bare 202 on this machine now":
# light enough that nothing queues.
MACHINE_RATE = 200
# Client lag p99 above this share of the bare 202 p99: the client, not the
# server, may be what the figures measure.
CLIENT_LAG_WARNING = 0.5


async def run(ctx: Context) -> dict[str, Any]:
    if not ctx.can.worker:
        return skipped(TITLE, WORKER_MISSING)
    p = ctx.profile
    raw: dict[str, list[dict[str, Any]]] = {str(rate): [] for rate in p.latency_rates}
    for repeat in range(p.repeats):
        for rate in p.latency_rates:
            result = await measure(ctx, rate)
            raw[str(rate)].append(result)
            _print(rate, repeat, result)
    return _section(ctx, raw)


async def measure(ctx: Context, rate: int) -> dict[str, Any]:
    """One repeat at one rate: bare handler, one-row commits, service."""
    seconds = ctx.profile.latency_s
    async with baseline("bench.bare_server") as (base, _):
        bare = responses(await drive(base, rate, seconds, "latency_bare"))
    async with ctx.databases.empty("commit_probe") as database_url:
        commit = await one_row_commits(database_url)
    async with (
        ctx.databases.migrated("latency") as database_url,
        service(ctx, database_url, "latency_service", worker=True, defaults=True) as base,
    ):
        records = await drive(base, rate, seconds, "latency_service")
        served = await commit_latencies(database_url, records)
    return {"bare": bare, "one_row_commit": commit, "service": served}


def _print(rate: int, repeat: int, r: dict[str, Any]) -> None:
    bare, svc, commit = r["bare"], r["service"], r["one_row_commit"]
    print(
        f"  latency {rate:5}/s repeat {repeat + 1}: bare 202 p99 {bare['http_p99_ms']:6.2f} ms"
        f" (lag p99 {bare['client_lag_p99_ms']:.2f})"
        f" | service 202 p99 {svc['http_p99_ms']:6.2f} ms, commit p50 {svc['p50_ms']:6.2f}"
        f" p99 {svc['p99_ms']:6.2f} max {svc['max_ms']:6.1f} ms"
        f" (lag p99 {svc['client_lag_p99_ms']:.2f}, errors {svc['errors']},"
        f" missing {svc['missing_messages']})"
        f" | one-row commit p50 {commit['p50_ms']:.2f} p99 {commit['p99_ms']:.2f} ms",
        flush=True,
    )


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One rate's figures: medians of the repeats, ratios paired per repeat."""

    def m(part: str, key: str) -> float:
        return median([float(r[part][key]) for r in runs])

    def series(part: str, key: str) -> list[float]:
        return [float(r[part][key]) for r in runs]

    bare_p99 = series("bare", "http_p99_ms")
    return {
        "bare_202_p50_ms": m("bare", "http_p50_ms"),
        "bare_202_p99_ms": m("bare", "http_p99_ms"),
        "bare_202_max_ms": m("bare", "http_max_ms"),
        "bare_client_lag_p50_ms": m("bare", "client_lag_p50_ms"),
        "bare_client_lag_p99_ms": m("bare", "client_lag_p99_ms"),
        "service_202_p50_ms": m("service", "http_p50_ms"),
        "service_202_p99_ms": m("service", "http_p99_ms"),
        "service_202_max_ms": m("service", "http_max_ms"),
        "commit_p50_ms": m("service", "p50_ms"),
        "commit_p99_ms": m("service", "p99_ms"),
        "commit_max_ms": m("service", "max_ms"),
        "commit_max_worst_ms": max(series("service", "max_ms")),
        "service_client_lag_p50_ms": m("service", "client_lag_p50_ms"),
        "service_client_lag_p99_ms": m("service", "client_lag_p99_ms"),
        "service_202_p99_vs_bare": paired_ratio(series("service", "http_p99_ms"), bare_p99),
        "commit_p99_vs_bare": paired_ratio(series("service", "p99_ms"), bare_p99),
        "one_row_commit_p50_ms": m("one_row_commit", "p50_ms"),
        "one_row_commit_p99_ms": m("one_row_commit", "p99_ms"),
        "errors": sum(int(r[part]["errors"]) for r in runs for part in ("bare", "service")),
        "missing_messages": sum(int(r["service"]["missing_messages"]) for r in runs),
    }


def machine(summary: dict[str, Any], raw: dict[str, list[dict[str, Any]]]) -> dict[str, float]:
    """What a bare 202 and a one-row commit cost on the machine during this
    section: the bare 202 p50 at MACHINE_RATE (or the lowest rate run), and the
    one-row commit probes of every run."""
    rate = str(MACHINE_RATE) if str(MACHINE_RATE) in summary else min(summary, key=int)
    probes = [r["one_row_commit"] for runs in raw.values() for r in runs]
    return {
        "bare_202_p50_ms": summary[rate]["bare_202_p50_ms"],
        "bare_202_rate": float(rate),
        "one_row_commit_p50_ms": median([float(c["p50_ms"]) for c in probes]),
        "one_row_commit_p99_ms": median([float(c["p99_ms"]) for c in probes]),
    }


def _section(ctx: Context, raw: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    p = ctx.profile
    summary: dict[str, Any] = {rate: summarize(runs) for rate, runs in raw.items()}
    summary["machine"] = machine(summary, raw)
    notes = _notes(summary, p.latency_rates)
    if any(r["service"]["measured_to"] != "commit" for runs in raw.values() for r in runs):
        notes.append(
            "track_commit_timestamp is off on this server: commit latencies end at the start "
            "of the message's transaction (messages.created_at), slightly before its commit."
        )
    return section(
        TITLE,
        what=(
            f"Open loop at {', '.join(f'{r}/s' for r in p.latency_rates)}: each request "
            "started when it falls due, latency from its scheduled time, "
            f"{p.latency_s:g} s measured after a {WARMUP_S:g} s warm-up (sent, left out). "
            "Each repeat and rate: the bare handler (bench/bare_server.py) first, then "
            f"{ROWS} one-row commits over asyncpg, then `messaging serve` with default "
            "settings (only DATABASE_URL, HOST and PORT set; API and worker in one "
            "process, logging at its default) on a fresh database, driven by the same "
            "client. Commit = pg_xact_commit_timestamp of the event's message minus the "
            "request's scheduled time. Client lag = how late the client started a request "
            f"(sent - scheduled). {p.repeats} repeats; medians of each repeat's figures, "
            "ratios paired within a repeat; max = median of the repeats' maxima."
        ),
        tables=[_latency_table(summary, p.latency_rates), _machine_table(summary, p.latency_rates)],
        raw=raw,
        summary=summary,
        notes=notes,
    )


# The latency table's columns: each with the summary key of the bare handler's
# row and of the service's (None: a blank cell).
_LATENCY_COLUMNS = (
    ("202 p50 ms (abs)", "bare_202_p50_ms", "service_202_p50_ms"),
    ("202 p99 ms (abs)", "bare_202_p99_ms", "service_202_p99_ms"),
    ("202 max ms (abs)", "bare_202_max_ms", "service_202_max_ms"),
    ("commit p50 ms (abs)", None, "commit_p50_ms"),
    ("commit p99 ms (abs)", None, "commit_p99_ms"),
    ("commit max ms (abs)", None, "commit_max_ms"),
    ("client lag p99 ms (abs)", "bare_client_lag_p99_ms", "service_client_lag_p99_ms"),
    ("202 p99 / bare 202 p99 (ratio)", None, "service_202_p99_vs_bare"),
    ("commit p99 / bare 202 p99 (ratio)", None, "commit_p99_vs_bare"),
)
_MACHINE_KEYS = ("bare_202_p50_ms", "bare_202_p99_ms", "one_row_commit_p50_ms")
_MACHINE_KEYS += ("one_row_commit_p99_ms",)


def _latency_table(summary: dict[str, Any], rates: tuple[int, ...]) -> dict[str, Any]:
    rows = []
    for rate in rates:
        s = summary[str(rate)]
        for label, which in (("bare handler", 1), ("service, defaults", 2)):
            cells = [None if c[which] is None else s[c[which]] for c in _LATENCY_COLUMNS]
            rows.append([f"{rate}/s", label, *cells])
    columns = ["rate", "server", *(c[0] for c in _LATENCY_COLUMNS)]
    return table("Open loop: bare handler, then the service", columns, rows)


def _machine_table(summary: dict[str, Any], rates: tuple[int, ...]) -> dict[str, Any]:
    rows = [[f"{rate}/s", *(summary[str(rate)][k] for k in _MACHINE_KEYS)] for rate in rates]
    columns = ["runs at", "bare 202 p50 ms (abs)", "bare 202 p99 ms (abs)"]
    columns += ["one-row commit p50 ms (abs)", "one-row commit p99 ms (abs)"]
    return table("What the machine costs at that moment", columns, rows)


def _notes(summary: dict[str, Any], rates: tuple[int, ...]) -> list[str]:
    mc = summary["machine"]
    notes = [
        f"On this machine during this section a bare 202 took {mc['bare_202_p50_ms']:.2f} ms "
        f"(p50 at {mc['bare_202_rate']:.0f}/s) and a one-row commit "
        f"{mc['one_row_commit_p50_ms']:.2f} ms p50, {mc['one_row_commit_p99_ms']:.2f} ms p99: "
        "the floor under the absolute figures."
    ]
    low = summary[str(min(rates))]
    notes.append(
        f"Every figure includes the client's own lateness: at {min(rates)}/s it started "
        f"requests {low['bare_client_lag_p50_ms']:.2f} ms (bare handler) and "
        f"{low['service_client_lag_p50_ms']:.2f} ms (service) late at the median; the event "
        "loop's timers tick in milliseconds."
    )
    for rate in rates:
        s = summary[str(rate)]
        worst_lag = max(s["bare_client_lag_p99_ms"], s["service_client_lag_p99_ms"])
        if worst_lag > CLIENT_LAG_WARNING * s["bare_202_p99_ms"]:
            notes.append(
                f"At {rate}/s the client started requests up to {worst_lag:.2f} ms late (p99), "
                f"more than {CLIENT_LAG_WARNING:g} x the bare 202 p99: the client may be part "
                "of what is measured (it counts as latency, never hidden)."
            )
        if s["errors"] or s["missing_messages"]:
            notes.append(
                f"At {rate}/s: {s['errors']} failed requests, "
                f"{s['missing_messages']} accepted events without a message in time."
            )
    return notes
