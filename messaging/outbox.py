"""The way of a send into the database (POST /api/messages/sms, /email): the
outbound message, queued for delivery, in the conversation of its two
participants, and its Idempotency-Key, in one transaction. Delivery happens
later, in the worker (worker/delivery.py); nothing here talks to a provider.

The transaction, in order:
1. with a key: idempotency_keys.lock, then find: a key that names a send already
   answers with that send (same request) or IdempotencyKeyReused (another
   request), and stores nothing;
2. conversations.insert_missing: the conversation, only if it does not exist (no
   identity value is drawn for one that does, so that the first conversation of
   a fresh database is number 1);
3. messages.insert_outbound: the message, queued and due now, counted in its
   conversation;
4. with a key: idempotency_keys.insert.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import asyncpg

from messaging.errors import IdempotencyKeyReused
from messaging.models import OutboundMessage, conversation_key
from messaging.store import conversations, idempotency_keys, messages
from messaging.store.db import transaction
from messaging.timestamps import format_timestamp


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
    key = conversation_key(message.channel, message.from_address, message.to_address)
    async with transaction(pool) as conn:
        if idempotency_key is not None:
            await idempotency_keys.lock(conn, idempotency_key)
            earlier = await idempotency_keys.find(conn, idempotency_key)
            if earlier is not None:
                if earlier.request_hash != fingerprint:
                    raise IdempotencyKeyReused(
                        "This Idempotency-Key was used with another request; nothing was stored."
                    )
                return QueuedSend(earlier.message_id, earlier.conversation_id, created=False)
        await conversations.insert_missing(conn, [key], [message.sent_at])
        message_id, conversation_id = await messages.insert_outbound(conn, key, message)
        if idempotency_key is not None:
            await idempotency_keys.insert(
                conn, idempotency_key, message.channel, fingerprint, message_id
            )
    return QueuedSend(message_id, conversation_id, created=True)
