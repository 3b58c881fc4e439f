"""The outbound messages as a delivery queue, as the worker sees it: claims,
outcomes, stale claims, the gauge.

Every statement is a named query in sql/messages.sql. Each outcome is recorded
only while this processor still holds the claim (status sending, its
processor_id), so a worker whose claim timed out cannot overwrite what another
recorded since. Driver errors are translated (store/db.py); transient ones reach
the caller as DatabaseUnavailable or as is, for it to retry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from messaging.models import OutboundMessage, channel_of
from messaging.store.db import connection
from messaging.store.queries import query

# The channel the insert trigger notifies (triggers/outbound_messages_notify.sql).
CHANNEL = "outbound_messages"

_CLAIM = query("messages.sql", "claim_sends")
_MARK_SENT = query("messages.sql", "mark_sent")
_RETRY = query("messages.sql", "retry_send")
_FAIL = query("messages.sql", "fail_send")
_REQUEUE_STALE = query("messages.sql", "requeue_stale_sends")
_STATS = query("messages.sql", "send_queue_stats")


@dataclass(frozen=True, slots=True)
class ClaimedSend:
    """A send this worker holds: status sending, its attempt counted."""

    id: int
    message: OutboundMessage
    attempt: int  # this attempt's number, from 1
    queued_at: datetime  # the send's commit (created_at)


@dataclass(frozen=True, slots=True)
class StaleSend:
    """A claim the sweep took back: requeued, or failed at its last attempt."""

    id: int
    channel: str  # 'sms' (SMS and MMS) or 'email'
    status: str  # 'queued' or 'failed'
    attempt: int
    processor_id: str


async def claim(pool: asyncpg.Pool, processor_id: str, limit: int) -> list[ClaimedSend]:
    """Claim up to `limit` due sends (committed at once), oldest due first."""
    async with connection(pool) as conn:
        rows = await conn.fetch(_CLAIM, processor_id, limit)
    return [
        ClaimedSend(
            id=row["id"],
            message=OutboundMessage(
                message_type=row["message_type"],
                from_address=row["from_address"],
                to_address=row["to_address"],
                body=row["body"],
                attachments=tuple(json.loads(row["attachments"])),
                sent_at=row["sent_at"],
            ),
            attempt=row["delivery_attempts"],
            queued_at=row["created_at"],
        )
        for row in sorted(rows, key=lambda r: r["id"])
    ]


async def mark_sent(
    pool: asyncpg.Pool, message_id: int, processor_id: str, provider_message_id: str
) -> float | None:
    """Status sent with the provider's id; the seconds from the send's commit to
    now, or None when the claim was lost (nothing changed)."""
    async with connection(pool) as conn:
        latency: float | None = await conn.fetchval(
            _MARK_SENT, message_id, processor_id, provider_message_id
        )
    return latency


async def retry_later(
    pool: asyncpg.Pool,
    message_id: int,
    processor_id: str,
    error: str,
    delay_s: float,
    not_before: datetime | None,
) -> datetime | None:
    """Back to queued, due after delay_s or not_before, whichever is later; that
    time, or None when the claim was lost."""
    async with connection(pool) as conn:
        due: datetime | None = await conn.fetchval(
            _RETRY, message_id, processor_id, error, delay_s, not_before
        )
    return due


async def mark_failed(pool: asyncpg.Pool, message_id: int, processor_id: str, error: str) -> bool:
    """Status failed with the reason; False when the claim was lost."""
    async with connection(pool) as conn:
        return await conn.fetchval(_FAIL, message_id, processor_id, error) is not None


async def requeue_stale(
    pool: asyncpg.Pool, *, timeout_s: float, max_attempts: int, limit: int
) -> list[StaleSend]:
    """Take back up to `limit` claims older than the timeout: queued and due now,
    or failed when the claim was the last attempt."""
    async with connection(pool) as conn:
        rows = await conn.fetch(_REQUEUE_STALE, timeout_s, max_attempts, limit)
    return [
        StaleSend(
            id=row["id"],
            channel=channel_of(row["message_type"]),
            status=row["status"],
            attempt=row["delivery_attempts"],
            processor_id=row["processor_id"],
        )
        for row in rows
    ]


async def due_count(pool: asyncpg.Pool) -> int:
    """How many sends are due now."""
    async with connection(pool) as conn:
        due: int = await conn.fetchval(_STATS)
    return due
