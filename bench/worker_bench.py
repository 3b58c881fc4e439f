"""Worker figures: webhook-to-message latency, and drain throughput.

Each run makes its own scratch database on the given server (migrated like
`make migrate`), runs real `messaging` processes against it, and drops it at the
end. Load goes to 127.0.0.1 only and is bounded in count and time.

    python bench/worker_bench.py latency --rate 150 --seconds 10 --port 18110
        `messaging serve` on the port; webhooks sent at a steady rate (open
        loop: each at its scheduled time, whether or not earlier ones have been
        answered); latency = message committed (processed_at, stamped in the
        batch's last statement) - webhook sent (client clock, same machine).

    python bench/worker_bench.py drain --events 50000 --workers 1
        events inserted first, then N `messaging worker` processes started;
        events/s = events / (last processed_at - first claimed_at), which
        leaves process start-up out.

--server-url names the PostgreSQL server (default: 127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from messaging.migrate import migrate  # noqa: E402

INSERT = """
INSERT INTO inbound_events
    (channel, provider_message_id, message_type, from_address, to_address, payload)
SELECT 'sms', 'drain-' || i, 'sms', sender, '+12016661234',
       jsonb_build_object('from', sender, 'to', '+12016661234', 'type', 'sms',
                          'messaging_provider_id', 'drain-' || i, 'body', 'hello ' || i,
                          'attachments', null, 'timestamp', '2024-11-01T14:00:00Z')
FROM generate_series($1::int, $2::int) AS i,
     LATERAL (SELECT '+1804555' || lpad((i % 100)::text, 4, '0') AS sender) AS s
"""


def database_url(server_url: str, name: str) -> str:
    parts = urlsplit(server_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


class ScratchDatabase:
    def __init__(self, server_url: str, keep: bool) -> None:
        self.server_url = server_url
        self.name = f"bench_worker_{uuid.uuid4().hex[:8]}"
        self.url = database_url(server_url, self.name)
        self.keep = keep

    async def __aenter__(self) -> ScratchDatabase:
        admin = await asyncpg.connect(self.server_url)
        try:
            await admin.execute(f'CREATE DATABASE "{self.name}"')
        finally:
            await admin.close()
        await migrate(self.url)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.keep:
            print(f"kept database {self.url}")
            return
        admin = await asyncpg.connect(self.server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            await admin.close()


def spawn(args: list[str], url: str, log: Path, **env: str) -> subprocess.Popen[bytes]:
    environment = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING", **env}
    return subprocess.Popen(
        [sys.executable, "-m", "messaging", *args],
        cwd=ROOT,
        env=environment,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def percentile(sorted_values: list[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def summary(values_s: list[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in values_s)
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 0.50), 2),
        "p90_ms": round(percentile(ms, 0.90), 2),
        "p99_ms": round(percentile(ms, 0.99), 2),
        "max_ms": round(ms[-1], 2),
        "mean_ms": round(statistics.fmean(ms), 2),
    }


async def wait_processed(db: asyncpg.Connection, total: int, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while (
        await db.fetchval("SELECT count(*) FROM inbound_events WHERE status = 'processed'") < total
    ):
        if time.monotonic() > deadline:
            raise SystemExit(f"not all {total} events processed within {within_s} s")
        await asyncio.sleep(0.05)


async def after_commit_histogram(http: aiohttp.ClientSession, total: int) -> dict[str, float]:
    """messaging_event_latency_seconds from /metrics, once every event counts."""
    buckets: dict[str, float] = {}
    for _ in range(300):
        async with http.get("/metrics", headers={"Accept": "text/plain"}) as r:
            text = await r.text()
        buckets = {}
        for line in text.splitlines():
            if line.startswith("messaging_event_latency_seconds_bucket"):
                bound = line.split('le="', 1)[1].split('"', 1)[0]
                buckets[bound] = float(line.rsplit(" ", 1)[1])
        if buckets.get("+Inf", 0) >= total:
            break
        await asyncio.sleep(0.1)
    count = buckets.get("+Inf", 0) or 1
    return {f"<={bound}s": round(n / count, 4) for bound, n in buckets.items()}


async def latency(args: argparse.Namespace) -> dict[str, object]:
    if not 18100 <= args.port <= 18199:
        raise SystemExit("use a port in 18100-18199")
    total = int(args.rate * args.seconds)
    log = Path(args.log)
    async with ScratchDatabase(args.server_url, args.keep) as scratch:
        server = spawn(["serve"], scratch.url, log, PORT=str(args.port))
        sent_at: dict[str, float] = {}
        statuses: list[int] = []
        try:
            base = f"http://127.0.0.1:{args.port}"
            async with aiohttp.ClientSession(base) as http:
                for _ in range(200):
                    try:
                        async with http.get("/readyz") as r:
                            if r.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.1)
                else:
                    raise SystemExit(f"server not ready; see {log}")

                async def send(i: int) -> None:
                    provider_id = f"lat-{i}"
                    body = {"from": f"+1804555{i % 100:04d}", "to": "+12016661234",
                            "type": "sms", "messaging_provider_id": provider_id,
                            "body": f"hello {i}", "attachments": None,
                            "timestamp": "2024-11-01T14:00:00Z"}  # fmt: skip
                    sent_at[provider_id] = time.time()
                    async with http.post("/api/webhooks/sms", json=body) as r:
                        statuses.append(r.status)

                started = time.monotonic()
                tasks = []
                for i in range(total):
                    delay = started + i / args.rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    tasks.append(asyncio.create_task(send(i)))
                await asyncio.gather(*tasks)
                send_s = time.monotonic() - started
                histogram = await after_commit_histogram(http, total)
            db = await asyncpg.connect(scratch.url)
            try:
                await wait_processed(db, total, 30)
                rows = await db.fetch(
                    """SELECT provider_message_id,
                              extract(epoch FROM processed_at) AS processed,
                              extract(epoch FROM processed_at - received_at) AS server_side
                       FROM inbound_events"""
                )
            finally:
                await db.close()
        finally:
            code = stop(server)
    end_to_end = [float(r["processed"]) - sent_at[r["provider_message_id"]] for r in rows]
    return {
        "mode": "latency",
        "rate_per_s": args.rate,
        "seconds": args.seconds,
        "achieved_rate_per_s": round(total / send_s, 1),
        "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
        "webhook_sent_to_message_committed": summary(end_to_end),
        "event_received_to_message_committed": summary([float(r["server_side"]) for r in rows]),
        # The worker's own histogram, observed after COMMIT returned: the share
        # of events at or under each bucket bound.
        "worker_histogram_after_commit": histogram,
        "serve_exit_code": code,
    }


async def drain(args: argparse.Namespace) -> dict[str, object]:
    log = Path(args.log)
    async with ScratchDatabase(args.server_url, args.keep) as scratch:
        db = await asyncpg.connect(scratch.url)
        try:
            for start in range(1, args.events + 1, 10_000):
                await db.execute(INSERT, start, min(args.events, start + 9_999))
            await db.execute("VACUUM ANALYZE inbound_events")
            wall_started = time.monotonic()
            workers = [
                spawn(["worker"], scratch.url, log, MESSAGING_BATCH_SIZE=str(args.batch_size))
                for _ in range(args.workers)
            ]
            try:
                await wait_processed(db, args.events, 300)
                wall_s = time.monotonic() - wall_started
            finally:
                codes = [stop(w) for w in workers]
            row = await db.fetchrow(
                """SELECT extract(epoch FROM max(processed_at) - min(claimed_at)) AS seconds,
                          count(DISTINCT processor_id) AS workers,
                          (SELECT count(*) FROM messages) AS messages,
                          (SELECT count(*) FROM conversations) AS conversations
                   FROM inbound_events"""
            )
        finally:
            await db.close()
    assert row is not None
    seconds = float(row["seconds"])
    return {
        "mode": "drain",
        "events": args.events,
        "workers": args.workers,
        "batch_size": args.batch_size,
        "drain_seconds": round(seconds, 3),
        "events_per_s": round(args.events / seconds),
        "wall_seconds_including_start_up": round(wall_s, 3),
        "workers_that_claimed": row["workers"],
        "messages": row["messages"],
        "conversations": row["conversations"],
        "worker_exit_codes": codes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--server-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--log", default="/tmp/worker_bench.log", help="processes' output")
    sub = parser.add_subparsers(required=True, dest="mode")
    lat = sub.add_parser("latency")
    lat.add_argument("--rate", type=float, default=150)
    lat.add_argument("--seconds", type=float, default=10)
    lat.add_argument("--port", type=int, default=18110)
    dr = sub.add_parser("drain")
    dr.add_argument("--events", type=int, default=50_000)
    dr.add_argument("--workers", type=int, default=1)
    dr.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    if args.mode == "latency" and args.rate * args.seconds > 20_000:
        raise SystemExit("keep the load bounded: rate x seconds <= 20000")
    result = asyncio.run(latency(args) if args.mode == "latency" else drain(args))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
