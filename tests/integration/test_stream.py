"""GET /api/events against the real app and PostgreSQL: what a consumer sees on
the wire, resuming, narrowing, the log's bound behind transactions in flight,
the refusals (400, 404, 410, 503), heartbeats and slow consumers."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import pytest

from messaging.config import Settings
from messaging.http.keys import STREAM_HUB
from messaging.models import StreamPosition
from messaging.store import stream_events
from messaging.store.db import transaction
from tests.support import arrange
from tests.support.aliases import ServerFactory
from tests.support.payloads import SMS_SEND, SMS_WEBHOOK
from tests.support.service import Service, serve_on_own_port
from tests.support.sse import Stream
from tests.support.waiting import wait_until


@pytest.fixture
async def service(
    aiohttp_server: ServerFactory, settings: Settings, db: asyncpg.Connection
) -> AsyncIterator[Service]:
    """`messaging serve`: the app with its worker and the mock providers."""
    server = await serve_on_own_port(aiohttp_server, settings, worker=True)
    async with aiohttp.ClientSession() as session:
        yield Service(server, session, db)


@asynccontextmanager
async def stream(
    service: Service, query: str = "", last_event_id: str | None = None
) -> AsyncIterator[Stream]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
    async with service.session.get(service.url(f"/api/events{query}"), headers=headers) as r:
        assert r.status == 200, await r.text()
        assert r.headers["Content-Type"] == "text/event-stream"
        yield Stream(r)


async def opened(service: Service, query: str = "", last_event_id: str | None = None) -> Any:
    """A stream opened and its first frame read: (the context, the stream, its start)."""
    context = stream(service, query, last_event_id)
    s = await context.__aenter__()
    first = await s.frame()
    assert first is not None and first.fields["retry"] == "1000" and "data" not in first.fields
    return context, s, first.id


def webhook(n: int, **changes: Any) -> dict[str, Any]:
    return {**SMS_WEBHOOK, "messaging_provider_id": f"stream-{n}", "body": f"in {n}", **changes}


async def test_a_webhook_and_a_send_reach_the_stream_as_they_commit(service: Service) -> None:
    context, s, start = await opened(service)
    try:
        status, _ = await service.post("/api/webhooks/sms", webhook(1))
        assert status == 202
        created = await s.event()
        assert created.event == "message.created"
        assert created.data["type"] == "message.created"
        assert created.data["conversation_id"] == 1
        inbound = created.data["message"]
        assert (inbound["direction"], inbound["body"], inbound["status"]) == (
            "inbound",
            "in 1",
            "received",
        )
        listed = await service.get("/api/conversations/1/messages")
        assert listed["items"] == [inbound]

        message_id = await service.send(SMS_SEND)
        frames = await s.events(3)
        assert [(f.event, f.data["message"]["status"]) for f in frames] == [
            ("message.created", "queued"),
            ("message.updated", "sending"),
            ("message.updated", "sent"),
        ]
        assert {f.data["message"]["id"] for f in frames} == {message_id}
        ids = [start, created.id, *(f.id for f in frames)]
        positions = [StreamPosition(*map(int, i.split("-"))) for i in ids]
        assert positions == sorted(set(positions))
        samples = await service.metrics()
        assert samples.value("messaging_streams_open") == 1
        assert samples.value("messaging_stream_events_sent_total") == 4
    finally:
        await context.__aexit__(None, None, None)


async def test_resuming_gets_exactly_the_events_after_the_last_one(service: Service) -> None:
    context, s, start = await opened(service)
    try:
        for n in range(5):
            assert (await service.post("/api/webhooks/sms", webhook(n)))[0] == 202
        seen = await s.events(5)
    finally:
        await context.__aexit__(None, None, None)
    bodies = [f.data["message"]["body"] for f in seen]
    assert sorted(bodies) == [f"in {n}" for n in range(5)]

    # From the first frame's id (before any event): all five again.
    async with stream(service, last_event_id=start) as again:
        assert [f.id for f in await again.events(5)] == [f.id for f in seen]
    # From the third: the last two, then what comes next, and nothing twice.
    async with stream(service, last_event_id=seen[2].id) as resumed:
        assert [f.id for f in await resumed.events(2)] == [f.id for f in seen[3:]]
        assert (await service.post("/api/webhooks/sms", webhook(9)))[0] == 202
        later = await resumed.event()
        assert later.data["message"]["body"] == "in 9"


async def test_a_stream_narrowed_to_a_conversation(service: Service) -> None:
    assert (await service.post("/api/webhooks/sms", webhook(1)))[0] == 202
    await wait_until(lambda: service.db.fetchval("SELECT count(*) FROM messages"), within=10)
    context, s, _ = await opened(service, "?conversation_id=1")
    try:
        other = webhook(2, **{"from": "+14155550100"})
        assert (await service.post("/api/webhooks/sms", other))[0] == 202
        assert (await service.post("/api/webhooks/sms", webhook(3)))[0] == 202
        # A stream that names no position starts at the newest event final when
        # it opened, so "in 1" may still come (committed, but not yet final).
        bodies = []
        while not bodies or bodies[-1] != "in 3":
            frame = await s.event()
            assert frame.data["conversation_id"] == 1
            bodies.append(frame.data["message"]["body"])
        assert bodies in (["in 3"], ["in 1", "in 3"])
    finally:
        await context.__aexit__(None, None, None)


async def test_events_held_back_behind_an_older_transaction_wait_for_it(
    aiohttp_server: ServerFactory, settings: Settings, db: asyncpg.Connection, database_url: str
) -> None:
    """A transaction that took its id first but commits last cannot have its
    event put behind a position already sent. With the fallback read an hour
    away, the stream's own retry of held-back events delivers both, in
    position order, once the older transaction ends (it notifies nothing)."""
    server = await serve_on_own_port(aiohttp_server, settings.replace(sweep_interval_ms=3_600_000))
    conversation = await arrange.conversation(db, "sms", "+12016661234", "+18045551234")
    older = await asyncpg.connect(database_url)
    async with aiohttp.ClientSession() as session:
        service = Service(server, session, db)
        context, s, _ = await opened(service)
        try:
            transaction = older.transaction()
            await transaction.start()
            # Takes its xid now, and writes a message (and its log row) later.
            await older.execute("SELECT pg_current_xact_id()")
            newer = await arrange.message(db, conversation, sent_at=datetime.now(UTC), body="newer")
            # The newer one committed, but its event waits behind the older
            # transaction, still in flight.
            with pytest.raises(TimeoutError):
                await s.event(within=0.5)
            await arrange.message(older, conversation, sent_at=datetime.now(UTC), body="older")
            await older.execute("NOTIFY unrelated_channel")  # no wake-up for the stream
            await transaction.commit()
            first, second = await s.events(2, within=5)
            assert [first.data["message"]["body"], second.data["message"]["body"]] == [
                "older",
                "newer",
            ]
            assert second.data["message"]["id"] == newer
        finally:
            await context.__aexit__(None, None, None)
            await older.close()


async def test_refusals(service: Service) -> None:
    async def answer(path: str, **headers: str) -> tuple[int, dict[str, Any]]:
        async with service.session.get(service.url(path), headers=headers) as r:
            assert r.content_type == "application/problem+json"
            return r.status, await r.json(content_type=None)

    status, body = await answer("/api/events", **{"Last-Event-ID": "17"})
    assert status == 400 and body["errors"][0]["field"] == "Last-Event-ID"
    status, body = await answer("/api/events?conversation_id=x")
    assert status == 400 and body["errors"][0]["field"] == "conversation_id"
    status, body = await answer("/api/events?conversation_id=4242")
    assert status == 404
    status, _ = await answer("/api/events", Accept="text/html")
    assert status == 406


async def test_a_position_older_than_the_log_keeps_is_gone(
    service: Service, pool: asyncpg.Pool
) -> None:
    context, s, start = await opened(service)
    try:
        for n in range(3):
            assert (await service.post("/api/webhooks/sms", webhook(n)))[0] == 202
        seen = await s.events(3)
    finally:
        await context.__aexit__(None, None, None)
    async with transaction(pool) as conn:
        assert await stream_events.prune(conn, retention_s=0, limit=2) == 2

    async with service.session.get(
        service.url("/api/events"), headers={"Last-Event-ID": start}
    ) as r:
        assert r.status == 410
        assert r.content_type == "application/problem+json"
        assert "no longer kept" in (await r.json(content_type=None))["detail"]
    # From the newest pruned position on, nothing is missing: not gone.
    async with stream(service, last_event_id=seen[1].id) as resumed:
        assert (await resumed.event()).id == seen[2].id


async def test_the_stream_limit_answers_503(
    aiohttp_server: ServerFactory, settings: Settings, db: asyncpg.Connection
) -> None:
    server = await serve_on_own_port(aiohttp_server, settings.replace(max_streams=2))
    async with aiohttp.ClientSession() as session:
        service = Service(server, session, db)
        first, _, _ = await opened(service)
        second, _, _ = await opened(service)
        try:
            async with session.get(service.url("/api/events")) as r:
                assert r.status == 503
                assert r.headers["Retry-After"]
                assert r.content_type == "application/problem+json"
            samples = await service.metrics()
            assert samples.value("messaging_streams_open") == 2
            assert samples.value("messaging_streams_refused_total", reason="limit") == 1
        finally:
            await second.__aexit__(None, None, None)
        # A consumer that left makes room for another (noticed within a second).
        hub = server.app[STREAM_HUB]
        await wait_until(lambda: hub.consumers == 1, within=5)
        third, _, _ = await opened(service)
        await third.__aexit__(None, None, None)
        await first.__aexit__(None, None, None)


async def test_an_idle_stream_carries_heartbeats(
    aiohttp_server: ServerFactory, settings: Settings, db: asyncpg.Connection
) -> None:
    server = await serve_on_own_port(aiohttp_server, settings.replace(stream_heartbeat_secs=0.05))
    async with aiohttp.ClientSession() as session:
        context, s, _ = await opened(Service(server, session, db))
        try:
            frame = await s.frame(within=5)
            assert frame is not None and frame.comments == ["heartbeat"] and not frame.fields
        finally:
            await context.__aexit__(None, None, None)


async def test_a_consumer_that_stops_reading_is_dropped_and_its_buffer_stays_bounded(
    aiohttp_server: ServerFactory, settings: Settings, db: asyncpg.Connection
) -> None:
    """A consumer whose socket takes nothing more: its frames fill the kernel's
    buffers, then the stream's (10 events), and then it is disconnected, with
    the metric; the hub keeps nothing of it."""
    server = await serve_on_own_port(aiohttp_server, settings.replace(stream_buffer_events=10))
    hub = server.app[STREAM_HUB]
    conversation = await arrange.conversation(db, "sms", "+12016661234", "+18045551234")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
    await asyncio.get_running_loop().sock_sendall(
        sock, b"GET /api/events HTTP/1.1\r\nHost: test\r\n\r\n"
    )
    async with aiohttp.ClientSession() as session:
        service = Service(server, session, db)
        try:
            await wait_until(lambda: hub.consumers, within=5)
            body = "x" * 4000
            for _ in range(40):
                await db.executemany(
                    "INSERT INTO messages (conversation_id, direction, message_type, from_address,"
                    " to_address, body, sent_at, status) VALUES ($1, 'outbound', 'sms',"
                    " '+12016661234', '+18045551234', $2, now(), 'failed')",
                    [(conversation, body)] * 50,
                )

            async def dropped() -> bool:
                samples = await service.metrics()
                return samples.value("messaging_stream_slow_consumers_total") == 1

            await wait_until(dropped, within=20)
            assert not hub.consumers
            assert (await service.metrics()).value("messaging_streams_open") == 0
        finally:
            sock.close()
