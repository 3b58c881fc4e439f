"""The insert trigger's NOTIFY, observed by a real asyncpg listener."""

from __future__ import annotations

import asyncio

import asyncpg

INSERT_ONE = """
INSERT INTO inbound_events (channel, provider_message_id, message_type, from_address, to_address, payload)
VALUES ('sms', $1, 'sms', '+18045551234', '+12016661234', '{}')
"""
INSERT_MANY = """
INSERT INTO inbound_events (channel, provider_message_id, message_type, from_address, to_address, payload)
SELECT 'sms', 'bulk-' || i, 'sms', '+18045551234', '+12016661234', '{}'
FROM generate_series(1, $1) AS i
"""


async def listen(database_url: str) -> tuple[asyncpg.Connection, asyncio.Queue[str]]:
    conn = await asyncpg.connect(database_url)
    received: asyncio.Queue[str] = asyncio.Queue()
    await conn.add_listener("inbound_events", lambda *args: received.put_nowait(args[3]))
    return conn, received


async def received_before_marker(database_url: str, queue: asyncio.Queue[str]) -> list[str]:
    """What the listener received before a marker notified now, from a
    connection of its own. Notifications arrive in commit order, so whatever
    was committed before the marker has arrived by the time it does."""
    marker = await asyncpg.connect(database_url)
    try:
        await marker.execute("SELECT pg_notify('inbound_events', 'marker')")
    finally:
        await marker.close()
    items = []
    while (item := await asyncio.wait_for(queue.get(), timeout=5)) != "marker":
        items.append(item)
    return items


async def test_a_single_insert_notifies(database_url: str, db: asyncpg.Connection) -> None:
    listener, received = await listen(database_url)
    try:
        await db.execute(INSERT_ONE, "one")
        payload = await asyncio.wait_for(received.get(), timeout=5)
        assert payload == ""
    finally:
        await listener.close()


async def test_a_multi_row_insert_notifies_once(database_url: str, db: asyncpg.Connection) -> None:
    listener, received = await listen(database_url)
    try:
        await db.execute(INSERT_MANY, 500)
        assert await received_before_marker(database_url, received) == [""]
    finally:
        await listener.close()


async def test_a_duplicate_that_inserts_nothing_stays_silent(
    database_url: str, db: asyncpg.Connection
) -> None:
    await db.execute(INSERT_ONE, "dup")
    listener, received = await listen(database_url)
    try:
        await db.execute(INSERT_ONE.strip() + " ON CONFLICT DO NOTHING", "dup")
        assert await received_before_marker(database_url, received) == []
    finally:
        await listener.close()


async def test_no_notification_before_commit(database_url: str, db: asyncpg.Connection) -> None:
    listener, received = await listen(database_url)
    try:
        async with db.transaction():
            await db.execute(INSERT_ONE, "tx")
            assert await received_before_marker(database_url, received) == []
        assert await received_before_marker(database_url, received) == [""]
    finally:
        await listener.close()
