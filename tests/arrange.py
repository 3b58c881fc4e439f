"""Conversations and messages put in place with direct SQL, the way the worker
(and later the send path) store them: a message insert also bumps its
conversation's message_count and last_activity_at."""

from __future__ import annotations

import json
from datetime import datetime

import asyncpg


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
    event_id = None
    if direction == "inbound":
        event_id = await db.fetchval(
            "INSERT INTO inbound_events (channel, provider_message_id, message_type,"
            " from_address, to_address, payload, status)"
            " VALUES ($1, gen_random_uuid()::text, $2, $3, $4, '{}', 'processed') RETURNING id",
            "email" if message_type == "email" else "sms",
            message_type,
            from_address,
            to_address,
        )
    message_id = await db.fetchval(
        "INSERT INTO messages (conversation_id, inbound_event_id, direction, message_type,"
        " from_address, to_address, body, attachments, sent_at, status)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10) RETURNING id",
        conversation_id,
        event_id,
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
