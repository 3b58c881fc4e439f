"""Reading conversations and their messages, a page at a time."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

import asyncpg

from messaging.errors import NotFound
from messaging.store.db import connection
from messaging.store.queries import query

_LIST_CONVERSATIONS = query("conversations.sql", "list_conversations")
_LIST_MESSAGES = query("conversations.sql", "list_messages")
_GET_MESSAGE = query("conversations.sql", "get_message")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """The rows of one page and how many rows all pages hold together."""

    items: list[T]
    total: int


@dataclass(frozen=True, slots=True)
class LastMessage:
    """The newest message of a conversation; body holds at most its first 2000 characters."""

    id: int
    direction: str
    message_type: str
    from_address: str
    to_address: str
    body: str
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    id: int
    kind: str  # 'sms' (SMS and MMS) or 'email'
    participants: tuple[str, str]  # normalised, in sorted order
    message_count: int
    last_activity_at: datetime
    last_message: LastMessage | None


@dataclass(frozen=True, slots=True)
class MessageRecord:
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


async def list_conversations(
    pool: asyncpg.Pool, *, limit: int, offset: int
) -> Page[ConversationSummary]:
    """Conversations, newest activity first."""
    async with connection(pool) as conn:
        rows = await conn.fetch(_LIST_CONVERSATIONS, limit, offset)
    return Page(
        items=[_conversation(row) for row in rows if row["id"] is not None],
        total=rows[0]["total"],
    )


async def list_messages(
    pool: asyncpg.Pool, conversation_id: int, *, limit: int, offset: int, body_chars: int
) -> Page[MessageRecord]:
    """A conversation's messages, oldest first, each body cut to body_chars
    characters; NotFound for an unknown conversation."""
    async with connection(pool) as conn:
        rows = await conn.fetch(_LIST_MESSAGES, conversation_id, limit, offset, body_chars)
    if not rows:
        raise NotFound(f"There is no conversation {conversation_id}.")
    return Page(
        items=[_message(row) for row in rows if row["id"] is not None],
        total=rows[0]["total"],
    )


async def get_message(pool: asyncpg.Pool, message_id: int) -> MessageRecord:
    """One message with its whole body; NotFound when there is none."""
    async with connection(pool) as conn:
        row = await conn.fetchrow(_GET_MESSAGE, message_id)
    if row is None:
        raise NotFound(f"There is no message {message_id}.")
    return _message(row)


def _conversation(row: asyncpg.Record) -> ConversationSummary:
    last = None
    if row["last_id"] is not None:
        last = LastMessage(
            id=row["last_id"],
            direction=row["last_direction"],
            message_type=row["last_type"],
            from_address=row["last_from"],
            to_address=row["last_to"],
            body=row["last_body"],
            sent_at=row["last_sent_at"],
        )
    return ConversationSummary(
        id=row["id"],
        kind=row["kind"],
        participants=(row["participant_a"], row["participant_b"]),
        message_count=row["message_count"],
        last_activity_at=row["last_activity_at"],
        last_message=last,
    )


def _message(row: asyncpg.Record) -> MessageRecord:
    return MessageRecord(
        id=row["id"],
        conversation_id=row["conversation_id"],
        direction=row["direction"],
        message_type=row["message_type"],
        from_address=row["from_address"],
        to_address=row["to_address"],
        body=row["body"],
        body_truncated=row["body_truncated"],
        attachments=json.loads(row["attachments"]),
        sent_at=row["sent_at"],
        status=row["status"],
    )
