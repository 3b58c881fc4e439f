"""EventStream over in-memory connections (no server): the idle timer that
replaces a silent connection without counting the caller's own time, and an
event of the wrong shape raised as MalformedEvent with the position before it.
The real service's side is tests/acceptance/test_client_events.py."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest

from messaging.client import EventStream, MalformedEvent, MessagingClient

IDLE_S = 0.05
FIRST = b"retry: 1\nid: 0-0\n\n"


def frame(position: str, message_id: int, data: bytes | None = None) -> bytes:
    message = {
        "id": message_id,
        "direction": "outbound",
        "type": "sms",
        "from": "+12016661234",
        "to": "+18045551234",
        "conversation_id": 1,
        "body": "Hi",
        "body_truncated": False,
        "attachments": [],
        "timestamp": "2024-11-01T14:00:00Z",
        "status": "queued",
    }
    if data is None:
        body = {"type": "message.created", "conversation_id": 1, "message": message}
        data = msgspec.json.encode(body)
    return b"id: %s\nevent: message.created\ndata: %s\n\n" % (position.encode(), data)


class Connection:
    """What EventStream reads of an aiohttp response: the chunks given, then a
    read that waits until the connection is closed, and fails as aiohttp's does."""

    status = 200
    content_type = "text/event-stream"

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks
        self._closed = asyncio.Event()
        self.content = self

    async def readany(self) -> bytes:
        if self._chunks and not self._closed.is_set():
            return self._chunks.pop(0)
        await self._closed.wait()
        raise aiohttp.ClientConnectionError("Connection closed")

    def close(self) -> None:
        self._closed.set()


class Session:
    """Answers each GET with the next connection, and keeps the headers sent."""

    def __init__(self, *connections: Connection) -> None:
        self._connections = list(connections)
        self.headers: list[dict[str, str]] = []

    async def get(self, url: str, *, params: Any, headers: dict[str, str]) -> Connection:
        self.headers.append(headers)
        return self._connections.pop(0) if self._connections else Connection([])


@contextlib.asynccontextmanager
async def events_of(session: Session) -> AsyncIterator[EventStream]:
    as_aiohttp: Any = session
    async with MessagingClient(
        "http://in-memory", session=as_aiohttp, stream_idle_timeout_s=IDLE_S, backoff_base_s=0.001
    ) as client:
        yield client.events()


async def test_a_read_that_waits_past_the_idle_timeout_is_replaced() -> None:
    session = Session(Connection([FIRST]), Connection([frame("1-1", 1)]))
    async with events_of(session) as events:
        event = await asyncio.wait_for(anext(events), 5)
        assert (event.id, event.message.id) == ("1-1", 1)
        assert events.requests == 2
    assert session.headers[1]["Last-Event-ID"] == "0-0"


async def test_time_the_caller_spends_between_reads_is_not_idle() -> None:
    # The second event is there to be read; the caller takes long to ask for it.
    session = Session(Connection([FIRST, frame("1-1", 1), frame("1-2", 2)]))
    async with events_of(session) as events:
        assert (await asyncio.wait_for(anext(events), 5)).id == "1-1"
        await asyncio.sleep(IDLE_S * 5)
        assert (await asyncio.wait_for(anext(events), 5)).id == "1-2"
        assert events.requests == 1 and events.connected


async def test_a_closed_stream_ends_and_stays_closed() -> None:
    async with events_of(Session(Connection([FIRST, frame("1-1", 1)]))) as events:
        await asyncio.wait_for(anext(events), 5)
        await events.aclose()
        with pytest.raises(StopAsyncIteration):
            await anext(events)
        await asyncio.sleep(IDLE_S * 2)
        assert events.requests == 1 and not events.connected


async def test_an_event_of_another_shape_raises_with_the_position_before_it() -> None:
    broken = frame("1-2", 2, data=b'{"conversation_id": 1, "message": {"id": "2"}}')
    session = Session(Connection([FIRST, frame("1-1", 1) + broken + frame("1-3", 3)]))
    async with events_of(session) as events:
        assert (await anext(events)).id == "1-1"
        with pytest.raises(MalformedEvent) as malformed:
            await anext(events)
        error = malformed.value
        assert (error.event_id, error.event_type) == ("1-2", "message.created")
        assert "$.message" in str(error) and error.data.startswith('{"conversation_id"')
        assert events.last_event_id == "1-1"
        # Iterating on skips it.
        assert (await anext(events)).id == "1-3"
        assert events.last_event_id == "1-3"
