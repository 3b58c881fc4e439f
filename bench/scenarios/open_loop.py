"""The open-loop client's runs and what is read from their records, shared by
the end-to-end and latency scenarios.

bench/loadgen.py (its own process) writes one record per request: scheduled,
sent and answered times on the wall clock. Every figure here starts at the
scheduled time, so a client that falls behind shows as latency; the client's
own lateness (sent - scheduled) is reported beside it, to tell whether the
client was the bottleneck. The warm-up second's records are left out.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import asyncpg

from bench.procs import PYTHON, WORK_DIR, run_command
from bench.queries import query
from bench.scenarios.common import tag
from bench.stats import latency_summary, percentile

PATH = "/api/webhooks/sms"
_DONE = query("end_to_end.sql", "messages_done")
_COMMITTED = query("end_to_end.sql", "message_commit_times")
_STARTED = query("end_to_end.sql", "message_start_times")
_COMMIT_TS_ON = query("admin.sql", "commit_timestamps_on")
# How long the worker may take, after the last request, to finish the messages.
MESSAGES_LIMIT_S = 60


async def drive(base: str, rate: int, seconds: float, name: str) -> list[dict[str, Any]]:
    """The client's records of `seconds` at `rate` to base's webhook, after its
    warm-up second (in the records, flagged)."""
    out = WORK_DIR / f"{name}_records.json"
    argv = [PYTHON, "-m", "bench.loadgen", "open", base + PATH]
    argv += [f"--rate={rate}", f"--duration={seconds}", f"--prefix={tag()}", f"--out={out}"]
    code, log = await run_command(argv, limit_s=seconds + 120)
    if code != 0:
        raise RuntimeError(f"load generator failed ({code}):\n{log[-2000:]}")
    records: list[dict[str, Any]] = json.loads(out.read_text(encoding="utf-8"))
    return records


def measured(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records after the warm-up."""
    return [r for r in records if not r.get("warmup")]


def accepted(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("status") == 202]


def responses(records: list[dict[str, Any]]) -> dict[str, Any]:
    """202 latency (scheduled to answered) and client lag (scheduled to sent) of
    the measured records, in ms."""
    kept = measured(records)
    ok = accepted(kept)
    http = [(r["done"] - r["scheduled"]) * 1000 for r in ok]
    lag = [(r["sent"] - r["scheduled"]) * 1000 for r in kept]
    return {
        "requests": len(kept),
        "errors": len(kept) - len(ok),
        "http_p50_ms": percentile(http, 50),
        "http_p99_ms": percentile(http, 99),
        "http_max_ms": max(http, default=float("nan")),
        "client_lag_p50_ms": percentile(lag, 50),
        "client_lag_p99_ms": percentile(lag, 99),
        "client_lag_max_ms": max(lag, default=float("nan")),
    }


async def commit_latencies(database_url: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Scheduled send to message commit (pg_xact_commit_timestamp of the message
    row) of the measured requests, once the worker has made their messages, with
    the 202 figures of responses()."""
    answered = accepted(measured(records))
    ok = [r for r in answered if r.get("id") is not None]
    rows, commit_ts = await message_times(database_url, [r["id"] for r in ok])
    by_id = {row["id"]: row for row in rows}
    e2e, stored = [], []
    for r in ok:
        row = by_id.get(r["id"])
        if row is None:
            continue
        done = row["committed"] if row["committed"] is not None else row["created"]
        e2e.append((done - r["scheduled"]) * 1000)
        stored.append((row["received"] - r["scheduled"]) * 1000)
    return (
        latency_summary(e2e)
        | responses(records)
        | {
            "missing_messages": len(answered) - len(e2e),
            "stored_p50_ms": percentile(stored, 50),
            "measured_to": "commit" if commit_ts else "transaction start",
        }
    )


async def message_times(
    database_url: str,
    ids: list[int],
    *,
    committed: str = _COMMITTED,
    started: str = _STARTED,
    poll_s: float = 0.2,
) -> tuple[list[Any], bool]:
    """The events' rows with their message times (the `committed` query where
    the server records commit times, else `started`; each takes the event ids),
    waiting up to MESSAGES_LIMIT_S for the worker to finish; and whether the
    server records commit times."""
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + MESSAGES_LIMIT_S
        while int(await conn.fetchval(_DONE, ids)) < len(ids):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(poll_s)
        commit_ts = bool(await conn.fetchval(_COMMIT_TS_ON))
        rows = await conn.fetch(committed if commit_ts else started, ids)
    finally:
        await conn.close()
    return list(rows), commit_ts
