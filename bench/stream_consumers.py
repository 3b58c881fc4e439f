"""Consumers of the service's event stream, in a process of their own (never in
the service's, nor in the load generator's).

    python -m bench.stream_consumers BASE_URL --streams N --out FILE [--times]
        [--quiet S] [--drain-limit S]

With BENCH_STREAM_API_KEY in the environment (a key with scope `read`: the
service's default with DATABASE_URL set asks for one), every stream sends it.

Opens N streams of GET /api/events with the typed client
(messaging.client.MessagingClient.events(), from now: no Last-Event-ID), each
on its own connection, and reads them until SIGTERM. For every event a stream
hands out it counts one; with --times it also records the message's id and the
time the iterator handed the event out (time.time(), Unix epoch seconds: the
wall clock the load generator records its send times on, and PostgreSQL its
commit timestamps).

On SIGTERM the streams go on reading until none has handed out an event for
--quiet seconds and none is waiting to reconnect (what was sent before the
signal but not yet read is still counted), or for --drain-limit seconds at
most; then FILE gets, per stream, the events counted, the requests it made
(1 + its reconnections), the error that ended it if any, and with --times the
ids and times; and the process's CPU seconds, in all and from the first event
on (the consumers' own cost per event, start-up left out).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.loadgen import measuring_process
from messaging.client import EventStream, MessagingClient

API_KEY_ENV = "BENCH_STREAM_API_KEY"
QUIET_S = 0.5
DRAIN_LIMIT_S = 30.0
# How often the drain checks whether the streams have gone quiet.
POLL_S = 0.05


@dataclass
class Receipts:
    """What one stream handed out."""

    received: int = 0
    ids: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    error: str | None = None


class Clock:
    """When any stream last handed out an event, and the process's CPU seconds
    when the first one did."""

    def __init__(self) -> None:
        self.last = time.time()
        self.cpu_at_first: float | None = None

    def tick(self, now: float) -> None:
        self.last = now
        if self.cpu_at_first is None:
            self.cpu_at_first = cpu_seconds()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def read(stream: EventStream, receipts: Receipts, times: bool, clock: Clock) -> None:
    """Count (and with times, record) every event the stream hands out."""
    try:
        async for event in stream:
            now = time.time()
            receipts.received += 1
            clock.tick(now)
            if times:
                receipts.ids.append(event.message.id)
                receipts.times.append(now)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # recorded for the report; the other streams go on
        receipts.error = f"{type(exc).__name__}: {exc}"


async def consume(
    base_url: str,
    api_key: str | None,
    streams: int,
    times: bool,
    quiet_s: float,
    drain_limit_s: float,
) -> dict[str, Any]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    receipts = [Receipts() for _ in range(streams)]
    clock = Clock()
    connector = aiohttp.TCPConnector(limit=streams + 10)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        MessagingClient(base_url, api_key=api_key, session=session) as client,
    ):
        opened = [client.events() for _ in range(streams)]
        tasks = [
            asyncio.create_task(read(s, r, times, clock))
            for s, r in zip(opened, receipts, strict=True)
        ]
        await stop.wait()
        stopped = time.monotonic()
        while time.monotonic() - stopped < drain_limit_s and not all(t.done() for t in tasks):
            # Quiet, and no stream waiting to reconnect (one dropped as a slow
            # consumer waits the service's `retry:` first).
            reconnecting = any(
                not s.connected for s, t in zip(opened, tasks, strict=True) if not t.done()
            )
            if time.time() - clock.last >= quiet_s and not reconnecting:
                break
            await asyncio.sleep(POLL_S)
        drained_s = time.monotonic() - stopped
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        requests = [s.requests for s in opened]
    cpu_s = cpu_seconds()
    return {
        "streams": [
            {
                "received": r.received,
                "requests": n,
                "error": r.error,
                **({"ids": r.ids, "times": r.times} if times else {}),
            }
            for r, n in zip(receipts, requests, strict=True)
        ],
        "cpu_s": cpu_s,
        # From the first event to the end: the reading alone, not the start-up.
        "events_cpu_s": cpu_s - (cpu_s if clock.cpu_at_first is None else clock.cpu_at_first),
        "drained_s": drained_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.stream_consumers", description=__doc__)
    parser.add_argument("base_url")
    parser.add_argument("--streams", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--times", action="store_true", help="record each event's id and time")
    parser.add_argument("--quiet", type=float, default=QUIET_S)
    parser.add_argument("--drain-limit", type=float, default=DRAIN_LIMIT_S)
    args = parser.parse_args()
    # No collection pauses while events arrive: they would read as the stream's delay.
    measuring_process()
    result = asyncio.run(
        consume(
            args.base_url,
            os.environ.get(API_KEY_ENV),
            args.streams,
            args.times,
            args.quiet,
            args.drain_limit,
        )
    )
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
