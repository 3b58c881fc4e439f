"""Load generators that run in a process of their own (never in the process
being measured, nor in the orchestrator).

    python -m bench.loadgen open   URL --rate R --duration S [--warmup W] --prefix P --out FILE
    python -m bench.loadgen closed URL --connections C --duration S --prefix P

`open` sends webhooks at a fixed rate whatever the responses do (open loop: a
slow answer delays no later request, so queueing shows up as latency instead of
as a lower rate) and writes one record per request to FILE: its scheduled send
time, when it was actually sent and answered (Unix epoch seconds, the clock
PostgreSQL's now() also reads), the status and the event id of the answer.
Each request is started when it falls due, never created ahead of time: a
client that builds all its requests up front charges its own start-up to the
server. The first W seconds (default 1) are sent like the rest but flagged
`"warmup": true`, for the reader to leave out (the pool's connections are opened
then, the server's caches fill); S seconds are measured after them. `sent` minus
`scheduled` is how late the client itself started a request (its lag).

`closed` is the stand-in for wrk where wrk is not installed: C connections, each
sending its next request when the last is answered; it prints the WRK_JSON line
that wrk's script prints. With --secret (whsec_...) each request is signed
(Standard Webhooks) as it is sent.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from bench.stats import percentile
from messaging.signatures import decode_secret, signature_headers

SMS_TEMPLATE = {
    "from": "+18045551234",
    "to": "+12016661234",
    "type": "sms",
    "body": "benchmark message",
    "attachments": None,
    "timestamp": "2024-11-01T14:00:00Z",
}
HEADERS = {"Content-Type": "application/json"}
REQUEST_TIMEOUT_S = 30.0
# Connections the open-loop client may hold: far more than a rate of a few
# thousand per second keeps in flight, so that a slow answer never makes a
# due request wait for a free connection (which would hide the server's delay
# as client lag). Keep-alive is aiohttp's default: connections are reused.
OPEN_LOOP_CONNECTIONS = 2048
WARMUP_S = 1.0


def webhook_body(provider_id: str) -> bytes:
    return json.dumps({**SMS_TEMPLATE, "messaging_provider_id": provider_id}).encode()


async def open_loop(
    rate: float, duration: float, fire: Callable[[int, float], Awaitable[None]]
) -> None:
    """Call fire(k, scheduled_epoch) for k = 0..rate*duration-1 at times
    start + k/rate, each as its own task created when it falls due (never
    ahead); return when all have finished.

    The loop wakes for whatever is due (several at once when it wakes late), so
    timer granularity costs no requests; the scheduled time, not the moment of
    sending, is what the latency is measured from. The schedule runs on
    time.monotonic(), not loop.time(): uvloop's loop clock is cached per
    iteration at millisecond resolution, which would make requests late and
    shift every scheduled epoch by however stale it was when converted."""
    total = int(rate * duration)
    start = time.monotonic() + 0.05
    to_epoch = time.time() - time.monotonic()
    tasks: list[asyncio.Task[None]] = []
    k = 0
    while k < total:
        now = time.monotonic()
        while k < total and start + k / rate <= now:
            tasks.append(asyncio.create_task(fire(k, start + k / rate + to_epoch)))
            k += 1
        if k < total:
            await asyncio.sleep(max(0.0, start + k / rate - time.monotonic()))
    await asyncio.gather(*tasks)


async def run_open(
    url: str, rate: float, duration: float, prefix: str, warmup: float = WARMUP_S
) -> list[dict[str, Any]]:
    """warmup + duration seconds of requests at rate; the first warmup seconds'
    records are flagged, not dropped (they were sent, and loaded the server)."""
    records: list[dict[str, Any]] = []
    warmup_requests = int(rate * warmup)
    connector = aiohttp.TCPConnector(limit=OPEN_LOOP_CONNECTIONS)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def fire(k: int, scheduled: float) -> None:
            record: dict[str, Any] = {"k": k, "scheduled": scheduled, "sent": time.time()}
            record["warmup"] = k < warmup_requests
            try:
                async with session.post(
                    url, data=webhook_body(f"{prefix}-{k}"), headers=HEADERS
                ) as resp:
                    body = await resp.json(content_type=None)
                    record["status"] = resp.status
                    record["id"] = body.get("id") if isinstance(body, dict) else None
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                record["status"] = 0
                record["error"] = type(exc).__name__
            record["done"] = time.time()
            records.append(record)

        await open_loop(rate, warmup + duration, fire)
    return sorted(records, key=lambda r: r["k"])


async def run_closed(
    url: str, connections: int, duration: float, prefix: str, secret: str | None = None
) -> dict[str, Any]:
    key = decode_secret(secret) if secret else None
    latencies_us: list[float] = []
    errors = {"status": 0, "socket": 0}
    deadline = time.monotonic() + duration
    connector = aiohttp.TCPConnector(limit=connections)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    started = time.monotonic()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def connection(c: int) -> None:
            n = 0
            while time.monotonic() < deadline:
                n += 1
                t0 = time.perf_counter()
                body = webhook_body(f"{prefix}-{c}-{n}")
                headers = HEADERS
                if key is not None:
                    msg_id = f"msg_{prefix}_{c}_{n}"
                    headers = HEADERS | signature_headers([key], msg_id, int(time.time()), body)
                try:
                    async with session.post(url, data=body, headers=headers) as resp:
                        await resp.read()
                        if resp.status >= 400:
                            errors["status"] += 1
                except (aiohttp.ClientError, TimeoutError):
                    errors["socket"] += 1
                latencies_us.append((time.perf_counter() - t0) * 1e6)

        await asyncio.gather(*(connection(c) for c in range(connections)))
    elapsed = time.monotonic() - started
    return {
        "requests": len(latencies_us),
        "duration_us": int(elapsed * 1e6),
        "status_errors": errors["status"],
        "socket_errors": errors["socket"],
        "timeouts": 0,
        "p50_us": percentile(latencies_us, 50),
        "p90_us": percentile(latencies_us, 90),
        "p99_us": percentile(latencies_us, 99),
        "max_us": max(latencies_us, default=0.0),
        "mean_us": sum(latencies_us) / max(1, len(latencies_us)),
    }


def measuring_process() -> None:
    """Set up a process of the bench's clients: uvloop where installed, and no
    garbage collection while it measures. The records and finished tasks pile
    up, and a full collection over them paused this client for 50-80 ms every
    few seconds, which read as the server's latency. The garbage is small; it
    is freed when the process ends."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    gc.freeze()
    gc.disable()


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.loadgen", description=__doc__)
    sub = parser.add_subparsers(dest="mode", required=True)
    open_ = sub.add_parser("open")
    open_.add_argument("url")
    open_.add_argument("--rate", type=float, required=True)
    open_.add_argument("--duration", type=float, required=True, help="measured seconds")
    open_.add_argument("--warmup", type=float, default=WARMUP_S, help="seconds sent first, flagged")
    open_.add_argument("--prefix", required=True)
    open_.add_argument("--out", required=True)
    closed = sub.add_parser("closed")
    closed.add_argument("url")
    closed.add_argument("--connections", type=int, default=64)
    closed.add_argument("--duration", type=float, required=True)
    closed.add_argument("--prefix", required=True)
    closed.add_argument("--secret", help="sign each request with this whsec_ secret")
    args = parser.parse_args()
    measuring_process()
    if args.mode == "open":
        records = asyncio.run(
            run_open(args.url, args.rate, args.duration, args.prefix, args.warmup)
        )
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(records, f)
    else:
        summary = asyncio.run(
            run_closed(args.url, args.connections, args.duration, args.prefix, args.secret)
        )
        print("WRK_JSON " + json.dumps(summary))


if __name__ == "__main__":
    main()
