"""Rows put in place with direct SQL, the way the service stores them: inbound
events as the webhook would have stored them, sends queued with the send
route's own queries, and conversations and messages as the worker (and the send
path) store them: a message insert also bumps its conversation's message_count
and last_activity_at."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import asyncpg

from messaging.store.queries import query


async def conversation(db: asyncpg.Connection, kind: str, a: str, b: str) -> int:
    low, high = sorted((a, b))
    return int(
        await db.fetchval(
            "INSERT INTO conversations (kind, participant_a, participant_b, last_activity_at)"
            " VALUES ($1, $2, $3, '2000-01-01Z') RETURNING id",
            kind,
            low,
            high,
        )
    )


async def message(
    db: asyncpg.Connection,
    conversation_id: int,
    *,
    sent_at: datetime,
    direction: str = "outbound",
    message_type: str = "sms",
    from_address: str = "+12016661234",
    to_address: str = "+18045551234",
    body: str = "hello",
    attachments: list[str] | None = None,
    status: str | None = None,
) -> int:
    event_id = provider_message_id = None
    if direction == "inbound":
        event_id, provider_message_id = await db.fetchrow(
            "INSERT INTO inbound_events (channel, provider_message_id, message_type,"
            " from_address, to_address, payload, status)"
            " VALUES ($1, gen_random_uuid()::text, $2, $3, $4, '{}', 'processed')"
            " RETURNING id, provider_message_id",
            "email" if message_type == "email" else "sms",
            message_type,
            from_address,
            to_address,
        )
    message_id = await db.fetchval(
        "INSERT INTO messages (conversation_id, inbound_event_id, provider_message_id,"
        " direction, message_type, from_address, to_address, body, attachments, sent_at, status)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11) RETURNING id",
        conversation_id,
        event_id,
        provider_message_id,
        direction,
        message_type,
        from_address,
        to_address,
        body,
        json.dumps(attachments or []),
        sent_at,
        status or ("received" if direction == "inbound" else "queued"),
    )
    await db.execute(
        "UPDATE conversations SET message_count = message_count + 1,"
        " last_activity_at = greatest(last_activity_at, $2) WHERE id = $1",
        conversation_id,
        sent_at,
    )
    return int(message_id)


# Valid SMS events, as the webhook would have stored them: provider ids
# prefix-<i>, senders spread over `pairs` phone numbers (so that events share
# conversations), one second apart.
INSERT_SMS = """
INSERT INTO inbound_events (channel, provider_message_id, message_type, from_address, to_address, payload)
SELECT 'sms', $1 || i, 'sms', sender, '+12016661234',
       jsonb_build_object(
           'from', sender, 'to', '+12016661234', 'type', 'sms',
           'messaging_provider_id', $1 || i, 'body', $4 || i, 'attachments', null,
           'timestamp', to_char(timestamp '2024-11-01 14:00:00' + i * interval '1 second',
                                'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
FROM generate_series(1, $2) AS i,
     LATERAL (SELECT '+1804555' || lpad((i % $3)::text, 4, '0') AS sender) AS s
RETURNING id
"""


async def insert_sms(
    db: asyncpg.Connection, count: int, *, prefix: str = "m-", pairs: int = 10, body: str = "hello "
) -> list[int]:
    """Insert `count` SMS events in one statement (one NOTIFY); their ids."""
    rows = await db.fetch(INSERT_SMS, prefix, count, pairs, body)
    return sorted(r["id"] for r in rows)


async def insert_sends(db: asyncpg.Connection, count: int) -> list[int]:
    """Queue `count` SMS sends from +12016661234 to +18045551234 with the send
    route's own queries (conversation first, then each message); their ids."""
    a, b, t0 = "+12016661234", "+18045551234", datetime(2024, 11, 1, 14, tzinfo=UTC)
    await db.execute(
        query("conversations.sql", "insert_missing_conversations"), ["sms"], [a], [b], [t0]
    )
    insert = query("messages.sql", "insert_outbound_message")
    return [
        await db.fetchval(insert, "sms", a, b, "sms", a, b, f"hello {i}", "[]", t0)
        for i in range(count)
    ]


async def api_key(db: asyncpg.Connection, name: str, *scopes: str) -> str:
    """A new API key with these scopes, stored as `messaging keys create` stores
    it (its hash only); the key."""
    from messaging.apikeys import key_hash, new_key
    from messaging.store import api_keys

    key = new_key()
    assert await api_keys.insert(db, name, scopes, key_hash(key))
    return key
