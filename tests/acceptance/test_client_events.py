"""MessagingClient.events() against the real service: every message seen once,
resuming with Last-Event-ID, 410 and 503 as the stream's refusals, a silent
connection replaced, closing, and a real `messaging serve` stopped and started again
under a consumer that keeps iterating."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import msgspec
import pytest
from aiohttp.test_utils import TestServer, unused_port

from messaging.client import (
    EventStream,
    Message,
    MessagingClient,
    NotFound,
    StreamEvent,
    StreamExpired,
)
from messaging.config import Settings
from messaging.store import stream_events
from messaging.store.db import direct
from tests.support.aliases import ServerFactory
from tests.support.payloads import EMAIL_SEND, EMAIL_WEBHOOK, SMS_SEND, SMS_WEBHOOK
from tests.support.processes import ServeProcess, terminate_quietly
from tests.support.service import serve_on_own_port
from tests.support.waiting import wait_until


class Consumer:
    """A stream iterated by a task of its own, as an application would, keeping
    what it yields."""

    def __init__(self, stream: EventStream) -> None:
        self.stream = stream
        self.events: list[StreamEvent] = []
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for event in self.stream:
            self.events.append(event)

    def created(self) -> list[int]:
        """The ids of the messages seen created, in the order they came."""
        self._raise_if_failed()
        return [e.message.id for e in self.events if e.type == "message.created"]

    def _raise_if_failed(self) -> None:
        if self._task.done():
            self._task.result()

    async def started(self) -> None:
        """Once the stream is open and its first frame read: from then on the
        service sends it every event."""

        def opened() -> bool:
            self._raise_if_failed()
            return self.stream.connected and self.stream.last_event_id is not None

        await wait_until(opened, within=10)

    async def saw(self, ids: set[int], within: float = 15) -> None:
        await wait_until(lambda: ids <= set(self.created()), within=within)

    async def ended(self) -> None:
        """Once the iteration ended by itself (raising what it raised)."""
        async with asyncio.timeout(10):
            await self._task

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self.stream.aclose()


def base_url(server: TestServer) -> str:
    return f"http://127.0.0.1:{server.port}"


def sms(body: str) -> dict[str, Any]:
    return {"from_": SMS_SEND["from"], "to": SMS_SEND["to"], "body": body}


def webhook(provider_id: str, body: str) -> dict[str, Any]:
    return {**SMS_WEBHOOK, "messaging_provider_id": provider_id, "body": body}


async def post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> None:
    async with session.post(url, json=body) as response:
        assert response.status == 202, await response.text()


async def message_ids(db: asyncpg.Connection, bodies: list[str]) -> dict[str, int]:
    rows = await db.fetch("SELECT body, id FROM messages WHERE body = ANY($1)", bodies)
    return {r["body"]: r["id"] for r in rows}


async def test_every_message_is_seen_created_once_as_the_lists_show_it(
    aiohttp_server: ServerFactory, settings: Settings, db: asyncpg.Connection
) -> None:
    server = await serve_on_own_port(aiohttp_server, settings, worker=True)
    base = base_url(server)
    async with MessagingClient(base) as client:
        everything = Consumer(client.events())
        await everything.started()
        sends = [
            await client.send_sms(**sms(SMS_SEND["body"]), timestamp=SMS_SEND["timestamp"]),
            await client.send_email(
                from_=EMAIL_SEND["from"], to=EMAIL_SEND["to"], body=EMAIL_SEND["body"]
            ),
        ]
        sent = {s.id for s in sends}
        # Conversation 2 exists now: a stream narrowed to it.
        email_only = Consumer(client.events(conversation_id=2))
        await email_only.started()
        await post(client.session, f"{base}/api/webhooks/sms", SMS_WEBHOOK)
        await post(client.session, f"{base}/api/webhooks/email", EMAIL_WEBHOOK)
        await wait_until(lambda: db.fetchval("SELECT count(*) = 4 FROM messages"), within=10)
        ids = {r["id"] for r in await db.fetch("SELECT id FROM messages")}

        await everything.saw(ids)
        assert sorted(everything.created()) == sorted(ids)
        # Each created event carries the message as its conversation's list shows it
        # (but the status it was created with).
        listed = {m.id: m for c in (1, 2) async for m in client.messages(c)}
        for event in everything.events:
            if event.type == "message.created":
                shown = listed[event.message.id]
                assert event.conversation_id == shown.conversation_id
                assert event.message == with_status(shown, event.message.status)
                expected = "queued" if shown.direction == "outbound" else "received"
                assert event.message.status == expected
        assert sent <= ids
        assert len({e.id for e in everything.events}) == len(everything.events)

        # The narrowed stream began after the email send: it sees the inbound
        # email created, and nothing of conversation 1.
        (inbound_email,) = [m.id for m in listed.values() if m.type == "email" and m.id not in sent]
        await email_only.saw({inbound_email})
        assert {e.conversation_id for e in email_only.events} == {2}

        # Resuming after the first event hands out the same events after it.
        first = everything.events[0]
        count = len(everything.events) - 1
        resumed = client.events(last_event_id=first.id)
        again = [e async for e in take(resumed, count)]
        assert again == everything.events[1 : count + 1]
        assert resumed.last_event_id == again[-1].id

        # A conversation that does not exist is refused, not retried.
        with pytest.raises(NotFound):
            await anext(client.events(conversation_id=999))
        await everything.stop()
        await email_only.stop()


def with_status(message: Message, status: str) -> Message:
    return msgspec.structs.replace(message, status=status)


async def take(stream: EventStream, count: int) -> AsyncIterator[StreamEvent]:
    async with stream:
        for _ in range(count):
            yield await anext(stream)


async def test_a_position_older_than_the_log_keeps_raises_stream_expired(
    aiohttp_server: ServerFactory, settings: Settings, database_url: str
) -> None:
    server = await serve_on_own_port(aiohttp_server, settings)
    async with MessagingClient(base_url(server)) as client:
        consumer = Consumer(client.events())
        await consumer.started()
        sent = [await client.send_sms(**sms(f"expiring {i}")) for i in range(2)]
        await consumer.saw({s.id for s in sent})
        position = consumer.events[0].id
        await consumer.stop()

        async with direct(database_url) as conn:
            assert await stream_events.prune(conn, retention_s=0, limit=100) >= 2
        stream = client.events(last_event_id=position)
        with pytest.raises(StreamExpired) as expired:
            await anext(stream)
        error = expired.value
        assert (error.status, error.title) == (410, "Gone")
        assert error.instance == "/api/events" and error.request_id
        assert "Read the lists again" in error.detail
        # Not retried: one request.
        assert stream.requests == 1


async def test_a_503_for_the_stream_limit_is_retried_until_a_stream_is_free(
    aiohttp_server: ServerFactory, settings: Settings
) -> None:
    server = await serve_on_own_port(aiohttp_server, settings.replace(max_streams=1))
    async with MessagingClient(base_url(server), backoff_base_s=0.01) as client:
        first = Consumer(client.events())
        await first.started()
        second = Consumer(client.events())
        # Refused (503, Retry-After) at least once, and still trying.
        await wait_until(lambda: second.stream.requests >= 1, within=10)
        assert not second.stream.connected and second.stream.last_event_id is None
        await first.stop()
        await second.started()
        sent = await client.send_sms(**sms("after the limit"))
        await second.saw({sent.id})
        await second.stop()


async def test_a_connection_silent_past_the_idle_timeout_is_replaced(
    aiohttp_server: ServerFactory, settings: Settings
) -> None:
    # The service's heartbeat comes far later than the client waits for a sign of life.
    server = await serve_on_own_port(aiohttp_server, settings.replace(stream_heartbeat_secs=60))
    base = base_url(server)
    async with MessagingClient(base, stream_idle_timeout_s=0.3, backoff_base_s=0.01) as client:
        consumer = Consumer(client.events())
        await consumer.started()
        before = await client.send_sms(**sms("before the silence"))
        await consumer.saw({before.id})
        await wait_until(lambda: consumer.stream.requests >= 3, within=10)
        after = await client.send_sms(**sms("after the silence"))
        await consumer.saw({after.id})
        assert consumer.created() == [before.id, after.id]
        await consumer.stop()


async def test_closing_the_client_ends_an_iteration_waiting_in_another_task(
    aiohttp_server: ServerFactory, settings: Settings
) -> None:
    server = await serve_on_own_port(aiohttp_server, settings)
    async with MessagingClient(base_url(server)) as client:
        consumer = Consumer(client.events())
        await consumer.started()
        await client.close()
        await consumer.ended()
        assert consumer.events == [] and not consumer.stream.connected


# A real `messaging serve` process, stopped (SIGTERM) and started again.


@pytest.fixture
def processes() -> Iterator[list[ServeProcess]]:
    started: list[ServeProcess] = []
    yield started
    terminate_quietly(started)


async def start(
    processes: list[ServeProcess], database_url: str, log_dir: Path, port: int
) -> ServeProcess:
    own = f"http://127.0.0.1:{port}"
    proc = ServeProcess(
        database_url,
        log_dir,
        f"serve-{len(processes)}",
        port,
        MESSAGING_API_AUTH="none",
        MESSAGING_MOCK_PROVIDERS="true",
        MESSAGING_SMS_PROVIDER_URL=f"{own}/mock/sms",
        MESSAGING_EMAIL_PROVIDER_URL=f"{own}/mock/email",
        MESSAGING_MOCK_WEBHOOK_URL=own,
    )
    processes.append(proc)
    await proc.ready()
    return proc


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_events_survive_a_restart_of_the_server_and_see_each_message_once(
    database_url: str,
    db: asyncpg.Connection,
    tmp_path: Path,
    processes: list[ServeProcess],
) -> None:
    port = unused_port()
    server = await start(processes, database_url, tmp_path, port)
    async with MessagingClient(server.base_url, backoff_cap_s=1.0) as client:
        consumer = Consumer(client.events())
        await consumer.started()
        before = [(await client.send_sms(**sms(f"before {i}"))).id for i in range(3)]
        await consumer.saw(set(before))

        assert await asyncio.to_thread(server.terminate) == 0
        # While the consumer's server is down, another server on the same
        # database takes webhooks, and its worker turns them into messages.
        other = await start(processes, database_url, tmp_path, unused_port())
        during_bodies = [f"during {i}" for i in range(3)]
        for i, body in enumerate(during_bodies):
            await post(
                client.session, f"{other.base_url}/api/webhooks/sms", webhook(f"d-{i}", body)
            )
        await wait_until(
            lambda: db.fetchval("SELECT count(*) = 3 FROM messages WHERE body LIKE 'during %'"),
            within=10,
        )
        assert await asyncio.to_thread(other.terminate) == 0
        assert not consumer.stream.connected

        restarted = await start(processes, database_url, tmp_path, port)
        # Webhooks right after the restart (before the consumer is back, or
        # after: either way, once), then sends once it is.
        after_bodies = [f"after restart {i}" for i in range(3)]
        for i, body in enumerate(after_bodies):
            await post(
                client.session, f"{restarted.base_url}/api/webhooks/sms", webhook(f"a-{i}", body)
            )
        await wait_until(lambda: consumer.stream.connected, within=15)
        later = [(await client.send_sms(**sms(f"later {i}"))).id for i in range(3)]
        await wait_until(
            lambda: db.fetchval(
                "SELECT count(*) = 3 FROM messages WHERE body LIKE 'after restart %'"
            ),
            within=10,
        )
        made = await message_ids(db, during_bodies + after_bodies)
        expected = [
            *before,
            *(made[b] for b in during_bodies),
            *later,
            *(made[b] for b in after_bodies),
        ]
        await consumer.saw(set(expected))

        seen = consumer.created()
        assert Counter(seen) == Counter(set(seen)), "a message was seen created twice"
        assert set(seen) == set(expected)
        # In the order they were made, which the stream's positions follow.
        assert seen[:6] == [*before, *(made[b] for b in during_bodies)]
        assert consumer.stream.requests >= 2
        await consumer.stop()
    assert await asyncio.to_thread(restarted.terminate) == 0
