"""Sends: the clients' flow of api.md on a fresh start, then the time from a
send's 202 to its status sent.

Makes a scratch database on the given server (migrated like `make migrate`),
starts `messaging serve` on it (the worker and the mock providers in the same
process, the default provider URLs pointing at that mock), and drops the
database at the end. Load goes to 127.0.0.1 only and is bounded in count.

    python bench/send_bench.py --port 18410 --rate 50 --count 200 [--faults 429=0.1,500=0.1]

1. The six POSTs of api.md (three sends, three webhooks) and the two GETs, with
   what they answered.
2. `--count` sends at `--rate` per second, open loop (each at its scheduled
   time, whether or not earlier ones have been answered), spread over 20
   conversations; then
   202 -> sent = delivered_at (stamped in the statement that marks the message
   sent) - the moment the client read the 202 (client clock, same machine), and
   commit -> sent = delivered_at - created_at (both server side).
3. SIGTERM, the exit code, and how many messages were left in sending.

--server-url names the PostgreSQL server (default: 127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from worker_bench import ScratchDatabase, spawn, stop, summary

SMS = {"from": "+12016661234", "to": "+18045551234", "type": "sms",
       "body": "Hello! This is a test SMS message.", "attachments": None,
       "timestamp": "2024-11-01T14:00:00Z"}  # fmt: skip
MMS = {**SMS, "type": "mms", "body": "Hello! This is a test MMS message with attachment.",
       "attachments": ["https://example.com/image.jpg"]}  # fmt: skip
EMAIL = {"from": "user@usehatchapp.com", "to": "contact@gmail.com",
         "body": "Hello! This is a test email message with <b>HTML</b> formatting.",
         "attachments": ["https://example.com/document.pdf"],
         "timestamp": "2024-11-01T14:00:00Z"}  # fmt: skip
INBOUND = {"from": "+18045551234", "to": "+12016661234", "type": "sms",
           "messaging_provider_id": "message-1", "body": "This is an incoming SMS message",
           "attachments": None, "timestamp": "2024-11-01T14:00:00Z"}  # fmt: skip
FLOW = [
    ("/api/messages/sms", SMS),
    ("/api/messages/sms", MMS),
    ("/api/messages/email", EMAIL),
    ("/api/webhooks/sms", INBOUND),
    ("/api/webhooks/sms", {**INBOUND, "type": "mms", "messaging_provider_id": "message-2",
                           "body": "This is an incoming MMS message",
                           "attachments": ["https://example.com/received-image.jpg"]}),
    ("/api/webhooks/email", {"from": "contact@gmail.com", "to": "user@usehatchapp.com",
                             "xillio_id": "message-3",
                             "body": "<html><body>This is an incoming email with <b>HTML</b> "
                                     "content</body></html>",
                             "attachments": ["https://example.com/received-document.pdf"],
                             "timestamp": "2024-11-01T14:00:00Z"}),
]  # fmt: skip


async def wait_ready(http: aiohttp.ClientSession, log: Path) -> None:
    for _ in range(300):
        try:
            async with http.get("/readyz") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit(f"server not ready; see {log}")


async def wait_delivered(db: asyncpg.Connection, ids: list[int], within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while await db.fetchval(
        "SELECT count(*) FROM messages WHERE id = ANY($1) AND status IN ('sent', 'failed')", ids
    ) < len(ids):
        if time.monotonic() > deadline:
            raise SystemExit(f"not all {len(ids)} sends delivered within {within_s} s")
        await asyncio.sleep(0.01)


async def flow(http: aiohttp.ClientSession, db: asyncpg.Connection) -> dict[str, Any]:
    """The six POSTs and the two GETs of api.md, on the fresh database."""
    answers: list[dict[str, Any]] = []
    accepted: dict[int, float] = {}
    for path, body in FLOW:
        async with http.post(path, json=body) as r:
            answer = await r.json()
            answers.append({"request": f"POST {path}", "status": r.status, "body": answer})
            if path.startswith("/api/messages/") and r.status == 202:
                accepted[answer["id"]] = time.time()
    await wait_delivered(db, list(accepted), 5)
    rows = await db.fetch(
        "SELECT id, extract(epoch FROM delivered_at) AS delivered FROM messages WHERE id = ANY($1)",
        list(accepted),
    )
    await asyncio.sleep(0.2)  # the worker has turned the webhooks into messages
    reads = {}
    for path in ("/api/conversations", "/api/conversations/1/messages"):
        async with http.get(path) as r:
            reads[f"GET {path}"] = {"status": r.status, "body": await r.json()}
    return {
        "posts": answers,
        "reads": reads,
        "sends_202_to_sent_ms": {
            str(r["id"]): round((float(r["delivered"]) - accepted[r["id"]]) * 1000, 2) for r in rows
        },
    }


async def load(
    http: aiohttp.ClientSession, db: asyncpg.Connection, rate: float, count: int
) -> dict[str, Any]:
    answered_at: dict[int, float] = {}
    statuses: list[int] = []

    async def send(i: int) -> None:
        body = {**SMS, "to": f"+1804555{i % 20:04d}", "body": f"load {i}"}
        async with http.post("/api/messages/sms", json=body) as r:
            answer = await r.json()
            statuses.append(r.status)
            if r.status == 202:
                answered_at[answer["id"]] = time.time()

    started = time.monotonic()
    tasks = []
    for i in range(count):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(i)))
    await asyncio.gather(*tasks)
    send_s = time.monotonic() - started
    ids = list(answered_at)
    await wait_delivered(db, ids, 120)
    rows = await db.fetch(
        """SELECT id, status, delivery_attempts,
                  extract(epoch FROM delivered_at) AS delivered,
                  extract(epoch FROM delivered_at - created_at) AS server_side
           FROM messages WHERE id = ANY($1)""",
        ids,
    )
    sent = [r for r in rows if r["status"] == "sent"]
    after_202 = [float(r["delivered"]) - answered_at[r["id"]] for r in sent]
    return {
        "rate_per_s": rate,
        "count": count,
        "achieved_rate_per_s": round(count / send_s, 1),
        "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
        "outcomes": {s: sum(r["status"] == s for r in rows) for s in ("sent", "failed")},
        "attempts": {
            str(a): sum(r["delivery_attempts"] == a for r in rows)
            for a in sorted({r["delivery_attempts"] for r in rows})
        },
        # Negative when the provider's acceptance was recorded before the client
        # had read the 202 (the claim is woken by the commit's NOTIFY).
        "202_to_sent": {
            **summary(after_202),
            "min_ms": round(min(after_202) * 1000, 2) if after_202 else None,
        },
        "commit_to_sent": summary([float(r["server_side"]) for r in sent]),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    if not 18400 <= args.port <= 18499:
        raise SystemExit("use a port in 18400-18499")
    log = Path(args.log)
    # A scratch database on a real server would mean API keys and no mock
    # providers; this measures the send path as `make run` serves it.
    env = {"PORT": str(args.port), "MESSAGING_API_AUTH": "none", "MESSAGING_MOCK_PROVIDERS": "true"}
    if args.faults:
        env["MESSAGING_MOCK_FAULTS"] = args.faults
        env["MESSAGING_MOCK_SEED"] = "1"
    async with ScratchDatabase(args.server_url, args.keep) as scratch:
        server = spawn(["serve"], scratch.url, log, **env)
        db = await asyncpg.connect(scratch.url)
        try:
            async with aiohttp.ClientSession(f"http://127.0.0.1:{args.port}") as http:
                await wait_ready(http, log)
                result: dict[str, Any] = {"flow": await flow(http, db)}
                result["load"] = await load(http, db, args.rate, args.count)
        finally:
            result_code = stop(server)
            left = await db.fetchval("SELECT count(*) FROM messages WHERE status = 'sending'")
            await db.close()
    result["serve_exit_code"] = result_code
    result["left_in_sending"] = left
    return result


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=18410, help="18400-18499 (default 18410)")
    parser.add_argument("--rate", type=float, default=50, help="sends per second (default 50)")
    parser.add_argument("--count", type=int, default=200, help="sends (default 200)")
    parser.add_argument("--faults", default="", help="MESSAGING_MOCK_FAULTS for the run")
    parser.add_argument("--server-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--log", default="bench/.work/send_bench.log")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse()
    Path(arguments.log).parent.mkdir(parents=True, exist_ok=True)
    print(json.dumps(asyncio.run(main(arguments)), indent=2))
