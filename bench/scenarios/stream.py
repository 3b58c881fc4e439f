"""Scenario 9, the event stream (issue 12): GET /api/events under webhook load,
read with the typed client (messaging.client.MessagingClient.events()) by
consumers in a process of their own (bench/stream_consumers.py), against
`messaging serve` with default settings (API and worker in one process, as
`make run` starts it), a fresh one on a fresh database for each measurement.

1. Delivery: open loop (bench/loadgen.py) at each of the profile's
   stream_rates, with each of its stream_consumers counts connected before the
   load starts. For every event a consumer received: the webhook's scheduled
   send -> received, and the message's commit -> received, the stream's own
   delay (the log's NOTIFY, the hub's read, the fan-out, the socket, the
   client's parsing). Events are joined to requests by the message's id: the
   event carries it, the database maps it to its inbound event, and the load
   generator recorded each 202's event id.
2. Ingest with consumers: closed loop at 64 connections (wrk, ingest.load),
   with no consumer and with stream_ingest_consumers connected and reading, in
   rotating order; req/s paired per repeat. Beside it, what each consumer
   received against the messages made, and the service's own count of events
   written, slow consumers dropped and streams open (/metrics).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import asyncpg

from bench.context import Context
from bench.cpu import cpu_seconds, per_request
from bench.loadgen import WARMUP_S
from bench.procs import PYTHON, WORK_DIR, child_env, running
from bench.queries import query
from bench.scenarios.common import rotated, section, service, skipped, table, tag
from bench.scenarios.ingest import PATH, load
from bench.scenarios.open_loop import accepted, drive, measured, message_times, responses
from bench.stats import median, paired_ratio, percentile
from bench.stream_consumers import API_KEY_ENV
from messaging import apikeys
from messaging.store import api_keys

TITLE = "9. Event stream (GET /api/events)"
WORKER_MISSING = "worker not available (`messaging worker --help` fails on this branch)"
# Issue 12's targets.
P50_TARGET_MS = 10.0
P50_TARGET_RATE = 200
INGEST_RATIO_TARGET = 0.90

_COMMITTED = query("stream.sql", "message_commit_times")
_STARTED = query("stream.sql", "message_start_times")
_MADE = query("stream.sql", "messages_made")
_BACKLOG = query("pipeline.sql", "backlog")

# How long the consumers' streams may take to open, and the worker to make the
# load's messages once it is over.
READY_LIMIT_S = 30.0
MESSAGES_LIMIT_S = 60.0
# The consumers stop reading once their streams have been quiet this long, none
# waiting to reconnect (bench/stream_consumers.py --quiet).
QUIET_S = 0.5
POLL_S = 0.05
# CPU seconds per second the consumers' reading needs (their CPU per event
# times the events offered) from which their one process, sharing the
# machine's cores, cannot keep up: the report then says so.
SATURATED = 0.9
_SENT = "messaging_stream_events_sent_total"
_SLOW = "messaging_stream_slow_consumers_total"
_OPEN = "messaging_streams_open"
CONFIGURATION = "`messaging serve`, default settings (API and worker in one process)"


async def run(ctx: Context) -> dict[str, Any]:
    if not ctx.can.worker:
        return skipped(TITLE, WORKER_MISSING)
    p = ctx.profile
    delivery: dict[str, list[dict[str, Any]]] = {
        _key(rate, n): [] for rate in p.stream_rates for n in p.stream_consumers
    }
    ingest: dict[str, list[dict[str, Any]]] = {"0": [], str(p.stream_ingest_consumers): []}
    for repeat in range(p.repeats):
        for rate in p.stream_rates:
            for n in rotated(list(p.stream_consumers), repeat):
                result = await _delivery(ctx, rate, n)
                delivery[_key(rate, n)].append(result)
                print(
                    f"  stream {_key(rate, n):>16} repeat {repeat + 1}: {_line(result)}",
                    flush=True,
                )
        for n in rotated([0, p.stream_ingest_consumers], repeat):
            result = await _ingest(ctx, n)
            ingest[str(n)].append(result)
            print(
                f"  stream ingest, {n:2} consumers, repeat {repeat + 1}: {_ingest_line(result)}",
                flush=True,
            )
    return _section(ctx, {"delivery": delivery, "ingest": ingest})


def _key(rate: int, consumers: int) -> str:
    return f"{rate}/s x{consumers}"


# -- the consumers' process and the service's stream metrics -----------------


@asynccontextmanager
async def consumers(
    base: str, api_key: str, streams: int, name: str, *, times: bool, drain_s: float
) -> AsyncIterator[dict[str, Any]]:
    """`streams` consumers of base's event stream in their own process, every
    stream open (the service counts it) before the block runs. Once the block
    is over they read what is left (until quiet, at most drain_s) and stop; the
    dict yielded then holds what they received (bench/stream_consumers.py) and
    their process's pid."""
    out = WORK_DIR / f"{name}.json"
    out.unlink(missing_ok=True)
    argv = [PYTHON, "-m", "bench.stream_consumers", base, f"--streams={streams}"]
    argv += [f"--out={out}", f"--quiet={QUIET_S}", f"--drain-limit={drain_s}"]
    argv += ["--times"] if times else []
    got: dict[str, Any] = {}
    env = child_env({API_KEY_ENV: api_key})
    async with running(name, argv, env, grace=drain_s + 30) as proc:
        got["pid"] = proc.pid
        await _streams_open(base, streams, proc)
        yield got
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"the consumers' process failed ({proc.returncode}): see {name}.log")
    got.update(json.loads(out.read_text(encoding="utf-8")))


async def read_key(database_url: str) -> str:
    """A new API key with scope `read` in the service's database, stored as
    `messaging keys create` stores one (made before the service starts, which
    then loads it): with DATABASE_URL set, the service's default asks for one
    on GET /api/events."""
    key = apikeys.new_key()
    conn = await asyncpg.connect(database_url)
    try:
        await api_keys.insert(conn, "bench-stream", ("read",), apikeys.key_hash(key))
    finally:
        await conn.close()
    return key


async def stream_metrics(base: str) -> dict[str, float]:
    """The service's stream counters: events written to the streams' sockets,
    slow consumers dropped, streams open now."""
    async with aiohttp.ClientSession() as session, session.get(f"{base}/metrics") as resp:
        text = await resp.text()
    values = {_SENT: 0.0, _SLOW: 0.0, _OPEN: 0.0}
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in values:
            values[name] += float(line.rsplit(" ", 1)[1])
    return {"sent": values[_SENT], "slow": values[_SLOW], "open": values[_OPEN]}


async def _streams_open(base: str, streams: int, proc: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + READY_LIMIT_S
    while (await stream_metrics(base))["open"] < streams:
        if proc.returncode is not None:
            raise RuntimeError(f"the consumers' process exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{streams} streams did not open within {READY_LIMIT_S:.0f} s")
        await asyncio.sleep(POLL_S)


async def _sent(base: str, events: int, limit_s: float) -> float:
    """Seconds until the service has written `events` frames to its streams (or
    limit_s, whichever is first): by then the consumers have been sent all."""
    started = time.monotonic()
    while (await stream_metrics(base))["sent"] < events:
        if time.monotonic() - started > limit_s:
            break
        await asyncio.sleep(POLL_S)
    return time.monotonic() - started


# -- 1. delivery under open-loop load ----------------------------------------


async def _delivery(ctx: Context, rate: int, n: int) -> dict[str, Any]:
    p = ctx.profile
    async with ctx.databases.migrated("stream") as database_url:
        key = await read_key(database_url)
        pids: list[int] = []
        async with service(
            ctx, database_url, "stream_serve", worker=True, defaults=True, pids=pids
        ) as base:
            async with consumers(
                base, key, n, "stream_consumers", times=True, drain_s=p.stream_drain_s
            ) as got:
                before = (cpu_seconds(pids[0]), cpu_seconds(got["pid"]), time.monotonic())
                records = await drive(base, rate, p.stream_s, "stream_load")
                after = (cpu_seconds(pids[0]), cpu_seconds(got["pid"]), time.monotonic())
                ids = [r["id"] for r in accepted(records) if r.get("id") is not None]
                rows, commit_ts = await _messages(database_url, ids)
                await _sent(base, n * len(rows), p.stream_drain_s)
            final = await stream_metrics(base)
    return _delivery_figures(records, rows, got, final) | {
        "consumers": n,
        "rate": rate,
        "measured_to": "commit" if commit_ts else "transaction start",
        # CPU seconds per second of the load (its warm-up included).
        "service_cpu_per_s": _rate(before[0], after[0], after[2] - before[2]),
        "consumer_cpu_per_s": _rate(before[1], after[1], after[2] - before[2]),
    }


def _rate(before: float | None, after: float | None, seconds: float) -> float | None:
    if before is None or after is None or seconds <= 0:
        return None
    return (after - before) / seconds


async def _messages(database_url: str, ids: list[int]) -> tuple[list[Any], bool]:
    """The events' messages (id, transaction start and commit), once the worker
    has made them all (or MESSAGES_LIMIT_S has passed); and whether the server
    records commit times."""
    return await message_times(
        database_url, ids, committed=_COMMITTED, started=_STARTED, poll_s=POLL_S
    )


def _delivery_figures(
    records: list[dict[str, Any]], rows: list[Any], got: dict[str, Any], after: dict[str, float]
) -> dict[str, Any]:
    """Each receipt of a measured request's event, from the request's scheduled
    time and from its message's commit; the warm-up's events are left out."""
    scheduled = {r["id"]: r["scheduled"] for r in accepted(measured(records)) if r.get("id")}
    by_message = {}
    for row in rows:
        if row["event_id"] in scheduled:
            done = row["committed"] if row["committed"] is not None else row["created"]
            by_message[row["message_id"]] = (scheduled[row["event_id"]], done)
    e2e, delay = [], []
    duplicates = 0
    streams = got["streams"]
    for stream in streams:
        duplicates += len(stream["ids"]) - len(set(stream["ids"]))
        for message_id, received in zip(stream["ids"], stream["times"], strict=True):
            times = by_message.get(message_id)
            if times is not None:
                e2e.append((received - times[0]) * 1000)
                delay.append((received - times[1]) * 1000)
    commit = [(done - sent) * 1000 for sent, done in by_message.values()]
    received_all = sum(s["received"] for s in streams)
    owed = len(streams) * len(by_message)
    return responses(records) | {
        "p50_ms": percentile(e2e, 50),
        "p99_ms": percentile(e2e, 99),
        "max_ms": max(e2e, default=float("nan")),
        "delay_p50_ms": percentile(delay, 50),
        "delay_p99_ms": percentile(delay, 99),
        "delay_max_ms": max(delay, default=float("nan")),
        "commit_p50_ms": percentile(commit, 50),
        "commit_p99_ms": percentile(commit, 99),
        "receipts": len(e2e),
        "owed": owed,
        # Measured events some consumer never received.
        "missing": owed - len(e2e) + duplicates,
        "duplicates": duplicates,
        "missing_messages": len(scheduled) - len(by_message),
        "reconnects": sum(s["requests"] - 1 for s in streams),
        "stream_errors": [s["error"] for s in streams if s["error"]],
        "slow_consumers": after["slow"],
        "events_sent": after["sent"],
        "consumer_cpu_us_per_event": (
            got["events_cpu_s"] * 1e6 / received_all if received_all else float("nan")
        ),
    }


def _line(r: dict[str, Any]) -> str:
    return (
        f"webhook -> received p50 {r['p50_ms']:7.2f} p99 {r['p99_ms']:8.2f} ms"
        f" | commit -> received p50 {r['delay_p50_ms']:6.2f} p99 {r['delay_p99_ms']:8.2f} ms"
        f" | commit p50 {r['commit_p50_ms']:6.2f} | {r['receipts']}/{r['owed']} receipts,"
        f" slow {r['slow_consumers']:.0f}, reconnects {r['reconnects']},"
        f" consumers {r['consumer_cpu_us_per_event']:.0f} us/event, errors {r['errors']}"
    )


# -- 2. ingest with and without consumers ------------------------------------


async def _ingest(ctx: Context, n: int) -> dict[str, Any]:
    pids: list[int] = []
    async with ctx.databases.migrated("stream") as database_url:
        key = await read_key(database_url)
        async with service(
            ctx, database_url, "stream_serve", worker=True, defaults=True, pids=pids
        ) as base:
            return await _ingest_load(ctx, n, database_url, key, base, pids[0])


async def _ingest_load(
    ctx: Context, n: int, database_url: str, key: str, base: str, pid: int
) -> dict[str, Any]:
    """One closed-loop measurement of the service at base (its process pid),
    with n consumers reading."""
    p = ctx.profile
    url = base + PATH
    if n == 0:
        await load(ctx, url, p.warmup_s, tag())
        cpu0 = cpu_seconds(pid)
        result = await load(ctx, url, p.stream_ingest_s, tag())
        result["server_cpu_us"] = per_request(cpu0, cpu_seconds(pid), result["requests"])
        return result | {"consumers": 0}
    async with consumers(
        base, key, n, "stream_ingest_consumers", times=False, drain_s=p.stream_drain_s
    ) as got:
        await load(ctx, url, p.warmup_s, tag())
        before = (cpu_seconds(pid), cpu_seconds(got["pid"]))
        result = await load(ctx, url, p.stream_ingest_s, tag())
        after = (cpu_seconds(pid), cpu_seconds(got["pid"]))
        at_end = await stream_metrics(base)
        made = await _made(database_url)
        sent_s = await _sent(base, n * made, p.stream_drain_s)
    final = await stream_metrics(base)
    received = sorted(s["received"] for s in got["streams"])
    window_s = result["requests"] / result["rps"] if result["rps"] else float("nan")
    consumer_cpu = _rate(before[1], after[1], window_s)
    return result | {
        "consumers": n,
        "server_cpu_us": per_request(before[0], after[0], result["requests"]),
        "messages": made,
        "received_min": received[0],
        "received_median": median([float(r) for r in received]),
        "received_max": received[-1],
        "kept_up": sum(1 for r in received if r >= made),
        "sent_at_end": at_end["sent"],
        "open_at_end": at_end["open"],
        "slow_at_end": at_end["slow"],
        "events_sent": final["sent"],
        "slow_consumers": final["slow"],
        "sent_after_s": sent_s,
        "reconnects": sum(s["requests"] - 1 for s in got["streams"]),
        "stream_errors": [s["error"] for s in got["streams"] if s["error"]],
        "consumer_cpu_per_s": consumer_cpu,
        "consumer_cpu_us_per_event": (
            got["events_cpu_s"] * 1e6 / sum(received) if sum(received) else float("nan")
        ),
    }


async def _made(database_url: str) -> int:
    """Messages made once the worker has processed every stored event (or
    MESSAGES_LIMIT_S has passed)."""
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + MESSAGES_LIMIT_S
        while int(await conn.fetchval(_BACKLOG)) > 0:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(POLL_S)
        return int(await conn.fetchval(_MADE))
    finally:
        await conn.close()


def _ingest_line(r: dict[str, Any]) -> str:
    line = f"{r['rps']:8.0f} req/s  p99 {r['p99_ms']:7.2f} ms  errors {r['errors']}"
    if r["consumers"]:
        line += (
            f" | {r['messages']} messages; received per consumer min {r['received_min']}"
            f" median {r['received_median']:.0f}; slow dropped {r['slow_consumers']:.0f},"
            f" reconnects {r['reconnects']}; consumers' CPU {r['consumer_cpu_per_s'] or 0:.2f}"
            " s/s"
        )
    return line


# -- the section ---------------------------------------------------------------


def _series(runs: list[dict[str, Any]], key: str) -> list[float]:
    return [float(r[key]) if r.get(key) is not None else float("nan") for r in runs]


def _med(runs: list[dict[str, Any]], key: str) -> float:
    return median(_series(runs, key))


def _delivery_summary(ctx: Context, raw: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    p = ctx.profile
    keys = (
        "p50_ms",
        "p99_ms",
        "max_ms",
        "delay_p50_ms",
        "delay_p99_ms",
        "delay_max_ms",
        "commit_p50_ms",
        "commit_p99_ms",
        "http_p99_ms",
        "client_lag_p99_ms",
        "receipts",
        "consumer_cpu_us_per_event",
        "service_cpu_per_s",
        "consumer_cpu_per_s",
    )
    summary: dict[str, Any] = {}
    fewest = min(p.stream_consumers)
    for rate in p.stream_rates:
        for n in p.stream_consumers:
            runs = raw[_key(rate, n)]
            s: dict[str, Any] = {key: _med(runs, key) for key in keys}
            s["p99_vs_fewest"] = paired_ratio(
                _series(runs, "p99_ms"), _series(raw[_key(rate, fewest)], "p99_ms")
            )
            for key in ("missing", "duplicates", "reconnects", "errors", "missing_messages"):
                s[key] = sum(int(r[key]) for r in runs)
            s["slow_consumers"] = sum(r["slow_consumers"] for r in runs)
            s["stream_errors"] = [e for r in runs for e in r["stream_errors"]]
            summary[_key(rate, n)] = s
    return summary


def _ingest_summary(ctx: Context, raw: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    n = str(ctx.profile.stream_ingest_consumers)
    none, some = raw["0"], raw[n]
    summary: dict[str, Any] = {}
    for name, runs in (("0", none), (n, some)):
        s: dict[str, Any] = {
            key: _med(runs, key) for key in ("rps", "p50_ms", "p99_ms", "server_cpu_us")
        }
        s["errors"] = sum(int(r["errors"]) for r in runs)
        summary[name] = s
    s = summary[n]
    for key in (
        "messages",
        "received_min",
        "received_median",
        "received_max",
        "kept_up",
        "events_sent",
        "sent_at_end",
        "slow_at_end",
        "consumer_cpu_per_s",
        "consumer_cpu_us_per_event",
    ):
        s[key] = _med(some, key)
    s["received_vs_messages"] = paired_ratio(
        _series(some, "received_min"), _series(some, "messages")
    )
    s["slow_consumers"] = sum(r["slow_consumers"] for r in some)
    s["reconnects"] = sum(int(r["reconnects"]) for r in some)
    s["stream_errors"] = [e for r in some for e in r["stream_errors"]]
    summary["ratio"] = paired_ratio(_series(some, "rps"), _series(none, "rps"))
    summary["server_cpu_ratio"] = paired_ratio(
        _series(some, "server_cpu_us"), _series(none, "server_cpu_us")
    )
    return summary


def _section(ctx: Context, raw: dict[str, dict[str, list[dict[str, Any]]]]) -> dict[str, Any]:
    p = ctx.profile
    delivery = _delivery_summary(ctx, raw["delivery"])
    ingest = _ingest_summary(ctx, raw["ingest"])
    summary = {"delivery": delivery, "ingest": ingest}
    measured_to = {r["measured_to"] for runs in raw["delivery"].values() for r in runs}
    return section(
        TITLE,
        what=(
            f"{CONFIGURATION}: only DATABASE_URL, HOST and PORT set, a fresh service on a "
            "fresh database for each measurement. The consumers run in a process of their "
            "own (bench/stream_consumers.py: one MessagingClient, one connection and one "
            "`events()` per consumer, from now), connected before the load starts. "
            f"Delivery: open loop at {', '.join(f'{r}/s' for r in p.stream_rates)} "
            f"(bench/loadgen.py), {p.stream_s:g} s measured after a {WARMUP_S:g} s warm-up, "
            f"with {' and '.join(str(n) for n in p.stream_consumers)} consumers; every receipt "
            "of every consumer counts (time.time() as the client's iterator hands the event "
            "out). Webhook -> received starts at the request's scheduled time (as in section "
            "3); commit = "
            + (
                "pg_xact_commit_timestamp of the message row's xmin (the worker batch's commit)"
                if measured_to == {"commit"}
                else "messages.created_at (the worker batch's transaction start)"
            )
            + ". Ingest: closed loop at "
            f"{p.ingest_connections} connections (wrk), {p.stream_ingest_s} s after "
            f"{p.warmup_s} s of warm-up, with no consumer and with "
            f"{p.stream_ingest_consumers} consumers reading, in rotating order. "
            f"{p.repeats} repeats; medians of each repeat's figures, ratios paired within "
            "a repeat."
        ),
        tables=[_delivery_table(ctx, delivery), _ingest_table(ctx, ingest)],
        raw=raw,
        summary=summary,
        notes=_notes(ctx, summary),
    )


def _delivery_table(ctx: Context, summary: dict[str, Any]) -> dict[str, Any]:
    p = ctx.profile
    rows = []
    for rate in p.stream_rates:
        for n in p.stream_consumers:
            s = summary[_key(rate, n)]
            rows.append(
                [
                    f"{rate}/s",
                    n,
                    s["p50_ms"],
                    s["p99_ms"],
                    s["delay_p50_ms"],
                    s["delay_p99_ms"],
                    s["commit_p50_ms"],
                    s["commit_p99_ms"],
                    s["p99_vs_fewest"],
                    s["http_p99_ms"],
                    s["client_lag_p99_ms"],
                    s["service_cpu_per_s"],
                    s["consumer_cpu_per_s"],
                    s["consumer_cpu_us_per_event"],
                    s["slow_consumers"],
                    s["reconnects"],
                    s["missing"],
                ]
            )
    columns = [
        "rate",
        "consumers",
        "webhook -> received p50 ms (abs)",
        "p99 ms (abs)",
        "commit -> received p50 ms (abs)",
        "p99 ms (abs)",
        "webhook -> commit p50 ms (abs)",
        "p99 ms (abs)",
        f"received p99 / {min(p.stream_consumers)} consumer's (ratio)",
        "202 p99 ms (abs)",
        "client lag p99 ms (abs)",
        "service CPU s per s (abs)",
        "consumers' CPU s per s (abs)",
        "consumers' CPU us/event (abs)",
        "slow consumers dropped (all repeats)",
        "reconnections (all repeats)",
        "receipts missing (all repeats)",
    ]
    return table(f"Webhook -> event received, open loop; {CONFIGURATION}", columns, rows)


def _ingest_table(ctx: Context, summary: dict[str, Any]) -> dict[str, Any]:
    n = str(ctx.profile.stream_ingest_consumers)
    none, some = summary["0"], summary[n]
    rows = [
        ["none", none["rps"], none["p50_ms"], none["p99_ms"], 1.0, none["server_cpu_us"]]
        + ["-"] * 7,
        [
            n,
            some["rps"],
            some["p50_ms"],
            some["p99_ms"],
            summary["ratio"],
            some["server_cpu_us"],
            some["messages"],
            some["received_min"],
            some["received_vs_messages"],
            some["slow_consumers"],
            some["reconnects"],
            some["consumer_cpu_per_s"],
            some["consumer_cpu_us_per_event"],
        ],
    ]
    columns = [
        "consumers",
        "req/s (abs)",
        "p50 ms (abs)",
        "p99 ms (abs)",
        "req/s / none (ratio)",
        "service CPU us/request (abs)",
        "messages made (abs)",
        "received by the slowest consumer (abs)",
        "slowest consumer received / made (ratio)",
        "slow consumers dropped (all repeats)",
        "reconnections (all repeats)",
        "consumers' CPU s per s of load (abs)",
        "consumers' CPU us/event (abs)",
    ]
    title = (
        f"Ingest at {ctx.profile.ingest_connections} connections (wrk, closed loop) with "
        f"consumers reading; {CONFIGURATION}"
    )
    return table(title, columns, rows)


def _met(ok: bool) -> str:
    return "met" if ok else "missed"


def _notes(ctx: Context, summary: dict[str, Any]) -> list[str]:
    p = ctx.profile
    delivery, ingest = summary["delivery"], summary["ingest"]
    notes = []
    if P50_TARGET_RATE in p.stream_rates:
        for n in p.stream_consumers:
            s = delivery[_key(P50_TARGET_RATE, n)]
            notes.append(
                f"Issue 12, webhook -> event received p50 <= {P50_TARGET_MS:g} ms at "
                f"{P50_TARGET_RATE}/s: {s['p50_ms']:.2f} ms with {n} consumer(s), "
                f"{_met(s['p50_ms'] <= P50_TARGET_MS)} (p99 {s['p99_ms']:.2f} ms; the "
                f"message's commit came {s['commit_p50_ms']:.2f} ms after the webhook and the "
                f"event {s['delay_p50_ms']:.2f} ms after the commit, p50)."
            )
    many = str(p.stream_ingest_consumers)
    some = ingest[many]
    notes.append(
        f"Issue 12, ingest with {many} consumers >= {INGEST_RATIO_TARGET:.2f} x with none: "
        f"{ingest['ratio']:.2f}, {_met(ingest['ratio'] >= INGEST_RATIO_TARGET)} "
        f"({some['rps']:.0f} against {ingest['0']['rps']:.0f} req/s). The service spent "
        f"{ingest['server_cpu_ratio']:.2f} x the CPU per request with them; the consumers' "
        f"process used {some['consumer_cpu_per_s'] or 0:.2f} CPU seconds per second of load, "
        f"on the same {os.cpu_count()} cores."
    )
    notes.append(
        f"Did the {many} consumers keep up during the closed loop? Median of the repeats: "
        f"{some['messages']:.0f} messages made, the slowest consumer received "
        f"{some['received_min']:.0f} ({some['received_vs_messages']:.2f}) when they stopped "
        f"reading (at most 2 x {p.stream_drain_s:g} s after the last message was made: the "
        "service given that long to write them all, then the consumers to read what was "
        f"sent); {some['kept_up']:.0f} "
        f"of {many} received every one. Over all repeats {some['slow_consumers']:.0f} streams "
        f"were dropped as slow consumers (1,000 events waiting for their socket), "
        f"{some['slow_at_end']:.0f} (median) of them while the load ran, and the consumers "
        f"reconnected {some['reconnects']} times (a dropped consumer waits the service's "
        "`retry:` of 1 s, resumes with Last-Event-ID and catches up from the log)."
    )
    for rate in p.stream_rates:
        for n in p.stream_consumers:
            s = delivery[_key(rate, n)]
            needed = s["consumer_cpu_us_per_event"] * rate * n / 1e6
            if needed >= SATURATED:
                notes.append(
                    f"At {rate}/s with {n} consumers the consumers' process had "
                    f"{rate * n:,} events/s to read at {s['consumer_cpu_us_per_event']:.1f} us "
                    "of CPU each (the typed client: SSE parsing, json.loads, the Message "
                    f"dataclass), {needed:.2f} CPU seconds per second; it got "
                    f"{s['consumer_cpu_per_s'] or 0:.2f} while the load ran, beside the "
                    f"service ({s['service_cpu_per_s'] or 0:.2f}), PostgreSQL and the load "
                    f"generator on {os.cpu_count()} cores, and fell behind: commit -> received "
                    f"p50 {s['delay_p50_ms']:,.0f} ms. This row measures the consumers' CPU on "
                    "this machine as much as the stream."
                )
    problems = [
        f"{k}: {s['missing']} receipts missing, {s['duplicates']} duplicates, "
        f"{s['errors']} failed requests, {s['missing_messages']} messages not made"
        for k, s in delivery.items()
        if s["missing"] or s["duplicates"] or s["errors"] or s["missing_messages"]
    ]
    if problems:
        notes.append("Open loop, over all repeats: " + "; ".join(problems) + ".")
    errors = [e for s in delivery.values() for e in s["stream_errors"]] + some["stream_errors"]
    if errors:
        notes.append(f"Streams that ended with an error: {len(errors)} (first: {errors[0]}).")
    return notes
