"""The messages table: inbound messages inserted by the worker's batches, sends
queued by the API, the sends as a delivery queue (claims, outcomes, stale
claims, the gauge), the reads of a conversation's messages, and the operator's
counts, failed sends and their retry.

Every statement is a named query in messages.sql beside this module. Each
delivery outcome is recorded only while this processor still holds the claim
(status sending, its processor_id), so a worker whose claim timed out cannot
overwrite what another recorded since. Functions that take the pool translate
driver errors (store/db.py); functions that take a connection run inside the
caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import asyncpg

from messaging.errors import NotFound
from messaging.models import OutboundMessage
from messaging.store import claims
from messaging.store.claims import Failure, Outcome, StaleClaim
from messaging.store.conversations import Page
from messaging.store.db import Conn, connection
from messaging.store.queries import query

# The channel the insert trigger notifies (triggers/outbound_messages_notify.sql).
CHANNEL = "outbound_messages"

_INSERT_INBOUND = query("messages.sql", "insert_inbound_messages")
_INSERT_OUTBOUND = query("messages.sql", "insert_outbound_message")
_CLAIM = query("messages.sql", "claim_sends")
_MARK_SENT = query("messages.sql", "mark_sent")
_RETRY = query("messages.sql", "retry_send")
_FAIL = query("messages.sql", "fail_send")
_SELECT_STALE = query("messages.sql", "select_stale_sends")
_FAIL_STALE = query("messages.sql", "fail_stale_sends")
_STATS = query("messages.sql", "send_queue_stats")
_LIST = query("messages.sql", "list_messages")
_GET = query("messages.sql", "get_message")
_SEND_COUNTS = query("messages.sql", "send_counts")
_LIST_FAILED = query("messages.sql", "list_failed_sends")
_RETRY_FAILED = query("messages.sql", "retry_failed_send")
_NOTIFY = query("notify.sql", "notify")


class NewMessage(NamedTuple):
    """The message an inbound event becomes, with its conversation's key.
    (A NamedTuple: one per event, so cheap to build and to transpose into the
    statement's columns.)"""

    event_id: int
    kind: str  # conversation kind: 'sms' (SMS and MMS) or 'email'
    participant_a: str  # participant_a <= participant_b (models.conversation_key)
    participant_b: str
    message_type: str
    from_address: str
    to_address: str
    body: str
    attachments: str  # a JSON array of URLs
    sent_at: datetime
    provider_message_id: str


@dataclass(frozen=True, slots=True)
class Gained:
    """What a conversation gained from a batch's messages."""

    conversation_id: int
    messages: int
    last_sent_at: datetime


@dataclass(frozen=True, slots=True)
class ClaimedSend:
    """A send this worker holds: status sending, its attempt counted."""

    id: int
    message: OutboundMessage
    attempt: int  # this attempt's number, from 1
    queued_at: datetime  # the send's commit (created_at)

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> ClaimedSend:
        return cls(
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


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """A message as the API shows it."""

    id: int
    conversation_id: int
    direction: str  # 'inbound' or 'outbound'
    message_type: str  # 'sms', 'mms' or 'email'
    from_address: str
    to_address: str
    body: str  # in a list, at most its first body_chars characters
    body_truncated: bool
    attachments: list[str]
    sent_at: datetime
    status: str

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> MessageRecord:
        # The statements answer a column per field, by the field's name.
        values = {name: row[name] for name in cls.__dataclass_fields__}
        values["attachments"] = json.loads(values["attachments"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class SendRecord:
    """A send as the operator's view shows it: where it stands in delivery."""

    id: int
    conversation_id: int
    message_type: str
    from_address: str
    to_address: str
    status: str
    delivery_attempts: int
    last_error: str | None
    provider_message_id: str | None
    created_at: datetime  # queued (the send's commit)
    next_attempt_at: datetime

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> SendRecord:
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True, slots=True)
class SendCounts:
    """Sends by status: exact but for the sent ones, which are estimated (None
    until the table has been analyzed)."""

    queued: int
    sending: int
    failed: int
    sent_estimate: int | None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> SendCounts:
        return cls(**dict(row))


@dataclass(frozen=True, slots=True)
class SendRetry:
    """What a retry of a failed send found: the message's status before (None:
    no such message) and direction, and the send once queued again (None if it
    was not)."""

    status_before: str | None
    direction: str | None
    send: SendRecord | None


async def insert_inbound(conn: Conn, messages: Sequence[NewMessage]) -> list[Gained]:
    """Insert a batch's messages (unique on their provider's key: one that exists
    inserts nothing); what each conversation gained. Their conversations must exist."""
    # One list per column, in NewMessage's field order (the statement's $1..$11).
    columns = [list(column) for column in zip(*messages, strict=True)]
    rows = await conn.fetch(_INSERT_INBOUND, *columns)
    return [Gained(row["id"], row["messages"], row["last_sent_at"]) for row in rows]


async def insert_outbound(
    conn: Conn, key: tuple[str, str, str], message: OutboundMessage
) -> tuple[int, int]:
    """Queue a send in its conversation (which must exist), counted there;
    (message id, conversation id)."""
    kind, participant_a, participant_b = key
    row = await conn.fetchrow(
        _INSERT_OUTBOUND,
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
    return row["id"], row["conversation_id"]


async def claim(pool: asyncpg.Pool, processor_id: str, limit: int) -> list[ClaimedSend]:
    """Claim up to `limit` due sends (committed at once), oldest due first."""
    async with connection(pool) as conn:
        rows = await conn.fetch(_CLAIM, processor_id, limit)
    return [ClaimedSend.from_row(row) for row in sorted(rows, key=lambda r: r["id"])]


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


async def select_stale(conn: Conn, timeout_s: float, limit: int) -> list[StaleClaim]:
    """Send claims older than the timeout, locked (SKIP LOCKED) for the caller's
    transaction, oldest first."""
    return await claims.select_stale(conn, _SELECT_STALE, timeout_s, limit)


async def fail_claims(conn: Conn, failures: Sequence[Failure], max_attempts: int) -> list[Outcome]:
    """Stale send claims taken back, on the caller's connection: queued after
    their delay, or failed once out of attempts (decided in SQL)."""
    return await claims.record(conn, _FAIL_STALE, failures, max_attempts)


async def due_count(pool: asyncpg.Pool) -> int:
    """How many sends are due now."""
    async with connection(pool) as conn:
        due: int = await conn.fetchval(_STATS)
    return due


async def list_messages(
    pool: asyncpg.Pool, conversation_id: int, *, limit: int, offset: int, body_chars: int
) -> Page[MessageRecord]:
    """A conversation's messages, oldest first, each body cut to body_chars
    characters; NotFound for an unknown conversation."""
    async with connection(pool) as conn:
        rows = await conn.fetch(_LIST, conversation_id, limit, offset, body_chars)
    if not rows:
        raise NotFound(f"There is no conversation {conversation_id}.")
    return Page(
        items=[MessageRecord.from_row(row) for row in rows if row["id"] is not None],
        total=rows[0]["total"],
    )


async def get_message(pool: asyncpg.Pool, message_id: int) -> MessageRecord:
    """One message with its whole body; NotFound when there is none."""
    async with connection(pool) as conn:
        row = await conn.fetchrow(_GET, message_id)
    if row is None:
        raise NotFound(f"There is no message {message_id}.")
    return MessageRecord.from_row(row)


async def send_counts(conn: Conn) -> SendCounts:
    row = await conn.fetchrow(_SEND_COUNTS)
    assert row is not None
    return SendCounts.from_row(row)


async def list_failed_sends(conn: Conn, *, limit: int, offset: int) -> Page[SendRecord]:
    """A page of the failed sends, oldest first, and how many there are."""
    rows = await conn.fetch(_LIST_FAILED, limit, offset)
    return Page(
        items=[SendRecord.from_row(row) for row in rows if row["id"] is not None],
        total=rows[0]["total"],
    )


async def retry_failed_send(conn: Conn, message_id: int) -> SendRetry:
    """Queue a failed send again, due now with its attempts reset (under the same
    provider idempotency key), and wake the delivery loops."""
    async with conn.transaction():
        row = await conn.fetchrow(_RETRY_FAILED, message_id)
        assert row is not None
        send = SendRecord.from_row(row) if row["id"] is not None else None
        if send is not None:
            # The notify trigger wakes the loops for inserted sends only.
            await conn.execute(_NOTIFY, CHANNEL, "")
    return SendRetry(row["status_before"], row["direction"], send)
