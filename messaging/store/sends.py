"""Storing a send (POST /api/messages/sms, /email): the outbound message, queued
for delivery, in the conversation of its two participants, and its
Idempotency-Key, in one transaction. Delivery happens later, in the worker
(worker/delivery.py); nothing here talks to a provider.

The transaction, in order:
1. with a key: lock_idempotency_key, then find_idempotency_key: a key that names
   a send already answers with that send (same request) or IdempotencyKeyReused
   (another request), and stores nothing;
2. insert_missing_conversations: the conversation, only if it does not exist (no
   identity value is drawn for one that does, so that the first conversation of
   a fresh database is number 1);
3. insert_outbound_message: the message, queued and due now, counted in its
   conversation;
4. with a key: insert_idempotency_key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import asyncpg

from messaging.errors import IdempotencyKeyReused
from messaging.models import OutboundMessage, conversation_key
from messaging.store.db import connection
from messaging.store.queries import query
from messaging.timestamps import format_timestamp

_LOCK_KEY = query("idempotency_keys.sql", "lock_idempotency_key")
_FIND_KEY = query("idempotency_keys.sql", "find_idempotency_key")
_INSERT_KEY = query("idempotency_keys.sql", "insert_idempotency_key")
_INSERT_CONVERSATIONS = query("conversations.sql", "insert_missing_conversations")
_INSERT_MESSAGE = query("messages.sql", "insert_outbound_message")


@dataclass(frozen=True, slots=True)
class QueuedSend:
    """The stored message a send maps to; created is False when its Idempotency-Key
    named a message stored by an earlier request."""

    message_id: int
    conversation_id: int
    created: bool


def request_hash(message: OutboundMessage) -> str:
    """What "the same request" means for an Idempotency-Key: the route (channel)
    and the validated, normalised message. Key order, white space and the
    formatting of addresses do not make a request another one; any difference
    in what would be sent does."""
    canonical = json.dumps(
        [
            message.channel,
            message.message_type,
            message.from_address,
            message.to_address,
            message.body,
            list(message.attachments),
            format_timestamp(message.sent_at),
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def queue_send(
    pool: asyncpg.Pool, message: OutboundMessage, idempotency_key: str | None
) -> QueuedSend:
    """Store a send durably (committed on return) or find the one its key names.
    Raises IdempotencyKeyReused, DatabaseUnavailable, DatabaseRejected."""
    fingerprint = request_hash(message) if idempotency_key is not None else ""
    kind, participant_a, participant_b = conversation_key(
        message.channel, message.from_address, message.to_address
    )
    async with connection(pool) as conn, conn.transaction():
        if idempotency_key is not None:
            await conn.execute(_LOCK_KEY, idempotency_key)
            earlier = await conn.fetchrow(_FIND_KEY, idempotency_key)
            if earlier is not None:
                if earlier["request_hash"] != fingerprint:
                    raise IdempotencyKeyReused(
                        "This Idempotency-Key was used with another request; nothing was stored."
                    )
                return QueuedSend(earlier["message_id"], earlier["conversation_id"], created=False)
        await conn.execute(
            _INSERT_CONVERSATIONS, [kind], [participant_a], [participant_b], [message.sent_at]
        )
        row = await conn.fetchrow(
            _INSERT_MESSAGE,
            kind,
            participant_a,
            participant_b,
            message.message_type,
            message.from_address,
            message.to_address,
            message.body,
            json.dumps(list(message.attachments)),
            message.sent_at,
        )
        assert row is not None
        if idempotency_key is not None:
            await conn.execute(
                _INSERT_KEY, idempotency_key, message.channel, fingerprint, row["id"]
            )
    return QueuedSend(row["id"], row["conversation_id"], created=True)
