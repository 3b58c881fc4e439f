"""The event stream under concurrent writers, all real processes: two API
processes (`serve --no-worker`) taking webhooks and sends, two `messaging
worker` processes turning them into messages and deliveries, and one consumer
(messaging.client) that hangs up at random points and resumes with its last
event id, on either API process. At the end it has seen every change once: a
message.created for every message, every send's status changes in the order
they happened, each position once and in increasing order, and exactly the
rows of the stream's log. With the fallback reads 60 s apart, the NOTIFY
path alone delivers (the run takes seconds)."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import unused_port

from messaging.app import init_mock_app
from messaging.client import EventStream, MessagingClient, StreamEvent
from messaging.config import Settings
from tests.support.aliases import ServerFactory
from tests.support.payloads import SMS_WEBHOOK
from tests.support.processes import ServeProcess, WorkerProcess, terminate_quietly
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

WEBHOOKS = 5000
SENDS = 500
# Distinct pairs of numbers, so that the changes spread over many conversations.
PEERS = 40


def position(event_id: str) -> tuple[int, int]:
    """The test knows the server's format ("xid-id"); a client does not need to."""
    xid, _, row = event_id.partition("-")
    return int(xid), int(row)


async def post_webhooks(session: aiohttp.ClientSession, urls: list[str]) -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(WEBHOOKS):
        queue.put_nowait(n)

    async def poster() -> None:
        while not queue.empty():
            n = queue.get_nowait()
            body = {
                **SMS_WEBHOOK,
                "from": f"+1804555{n % PEERS:04d}",
                "messaging_provider_id": f"stream-{n}",
                "body": f"webhook {n}",
            }
            async with session.post(f"{urls[n % 2]}/api/webhooks/sms", json=body) as r:
                assert r.status == 202, await r.text()

    await asyncio.gather(*(poster() for _ in range(16)))


async def post_sends(clients: list[MessagingClient]) -> set[int]:
    ids: set[int] = set()

    async def sender(k: int) -> None:
        for n in range(k, SENDS, 8):
            accepted = await clients[n % 2].send_sms(
                from_="+12016661234", to=f"+1804555{n % PEERS:04d}", body=f"send {n}"
            )
            ids.add(accepted.id)

    await asyncio.gather(*(sender(k) for k in range(8)))
    return ids


class Consumer:
    """Reads the stream in stretches of random length, each on a new connection
    to one of the API processes, resuming from the last event it handled."""

    def __init__(self, clients: list[MessagingClient], seed: int) -> None:
        self._clients = clients
        self._random = random.Random(seed)
        self.events: list[StreamEvent] = []
        self.last_event_id = "0-0"  # the origin: everything the log ever held
        self.connections = 0
        self._stream: EventStream | None = None

    async def run(self, done: asyncio.Event) -> None:
        while not done.is_set():
            client = self._clients[self.connections % 2]
            self.connections += 1
            stretch = self._random.randint(1, 400)
            async with client.events(last_event_id=self.last_event_id) as stream:
                self._stream = stream
                async for event in stream:
                    self.events.append(event)
                    self.last_event_id = event.id
                    stretch -= 1
                    if stretch == 0 or done.is_set():
                        break

    async def stop(self, done: asyncio.Event) -> None:
        done.set()
        if self._stream is not None:
            await self._stream.aclose()


@pytest.mark.parametrize("sweep_interval_ms", [1000, 60_000], ids=["sweep_1s", "sweep_60s"])
@pytest.mark.timeout(180)
async def test_a_resuming_consumer_sees_every_change_once_in_order(
    aiohttp_server: ServerFactory,
    database_url: str,
    db: asyncpg.Connection,
    tmp_path: Path,
    sweep_interval_ms: int,
) -> None:
    mock = await aiohttp_server(init_mock_app(Settings(mock_seed=3)))
    provider = str(mock.make_url("/mock")).rstrip("/")
    env = {
        "MESSAGING_API_AUTH": "none",
        "MESSAGING_MOCK_PROVIDERS": "false",
        "MESSAGING_SWEEP_INTERVAL_MS": str(sweep_interval_ms),
        "MESSAGING_SMS_PROVIDER_URL": f"{provider}/sms",
        "MESSAGING_EMAIL_PROVIDER_URL": f"{provider}/email",
        "LOG_LEVEL": "WARNING",
    }
    apis = [
        ServeProcess(database_url, tmp_path, f"api-{i}", unused_port(), "--no-worker", **env)
        for i in range(2)
    ]
    workers = [WorkerProcess(database_url, tmp_path, f"worker-{i}", **env) for i in range(2)]
    procs = [*apis, *workers]
    urls = [api.base_url for api in apis]
    try:
        for api in apis:
            await api.ready()
        async with (
            aiohttp.ClientSession() as session,
            MessagingClient(urls[0], session=session) as a,
            MessagingClient(urls[1], session=session) as b,
        ):
            consumer = Consumer([a, b], seed=sweep_interval_ms)
            done = asyncio.Event()
            consuming = asyncio.create_task(consumer.run(done))
            _, send_ids = await asyncio.gather(post_webhooks(session, urls), post_sends([a, b]))

            async def all_seen() -> bool:
                if consuming.done():
                    consuming.result()  # raises what stopped it
                # Settled first, then the log counted: a change that commits
                # between the two statements is then in the count (counted first,
                # the last changes could settle after the count, and the wait
                # end before the consumer saw them).
                settled = await db.fetchval(
                    "SELECT count(*) = $1 FROM messages WHERE status IN ('received', 'sent')",
                    WEBHOOKS + SENDS,
                )
                expected = await db.fetchval("SELECT count(*) FROM stream_events")
                return bool(settled) and len(consumer.events) >= expected

            await wait_until(all_seen, within=120, interval=0.2)
            await consumer.stop(done)
            await asyncio.wait_for(consuming, timeout=30)
    except BaseException:
        for p in procs:
            print(f"--- {p.log_path.name}\n{p.output()[-3000:]}")
        raise
    finally:
        terminate_quietly(procs)

    seen = consumer.events
    # Each position once, in increasing order, across every reconnection.
    positions = [position(e.id) for e in seen]
    assert positions == sorted(set(positions))
    # Exactly the log's rows: nothing missed, nothing extra.
    logged = await db.fetch("SELECT xid::text::bigint AS xid, id FROM stream_events")
    assert sorted(positions) == sorted((r["xid"], r["id"]) for r in logged)
    # A message.created for every message, once.
    created = [e.message.id for e in seen if e.type == "message.created"]
    all_ids = {r["id"] for r in await db.fetch("SELECT id FROM messages")}
    assert len(created) == len(all_ids) == WEBHOOKS + SENDS
    assert set(created) == all_ids
    # Each send's changes in the order they happened: queued, sending, sent.
    story: dict[int, list[str]] = defaultdict(list)
    for e in seen:
        if e.message.direction == "outbound":
            story[e.message.id].append(e.message.status)
    assert set(story) == send_ids
    for statuses in story.values():
        assert statuses[0] == "queued" and statuses[-1] == "sent", statuses
        assert statuses == ["queued", "sending", "sent"] or _retried(statuses), statuses
    assert consumer.connections > 10
    for p in procs:
        assert "Traceback" not in p.output(), p.log_path.name


def _retried(statuses: list[Any]) -> bool:
    """queued, then (sending, queued)* for retries, then sending, sent."""
    middle = statuses[1:-2]
    pairs = [tuple(middle[i : i + 2]) for i in range(0, len(middle), 2)]
    return statuses[-2:] == ["sending", "sent"] and all(p == ("sending", "queued") for p in pairs)
