"""The conversations table: created when a batch of messages or a send needs one,
counted as messages arrive, and read a page at a time (newest activity first).

Every statement is a named query in conversations.sql beside this module."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

import asyncpg

from messaging.store.db import Conn, connection
from messaging.store.queries import query

_LIST = query("conversations.sql", "list_conversations")
_INSERT_MISSING = query("conversations.sql", "insert_missing_conversations")
_ADD_MESSAGES = query("conversations.sql", "add_messages")
_EXISTS = query("conversations.sql", "conversation_exists")
_COMPACT_COUNTS = query("conversations.sql", "compact_conversation_counts")

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

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> ConversationSummary:
        last = None
        if row["last_id"] is not None:
            # The last message's columns are its fields' names with last_ before.
            last = LastMessage(
                **{name: row[f"last_{name}"] for name in LastMessage.__dataclass_fields__}
            )
        return cls(
            id=row["id"],
            kind=row["kind"],
            participants=(row["participant_a"], row["participant_b"]),
            message_count=row["message_count"],
            last_activity_at=row["last_activity_at"],
            last_message=last,
        )


async def list_conversations(
    pool: asyncpg.Pool, *, limit: int, offset: int
) -> Page[ConversationSummary]:
    """Conversations, newest activity first."""
    async with connection(pool) as conn:
        rows = await conn.fetch(_LIST, limit, offset)
    return Page(
        items=[ConversationSummary.from_row(row) for row in rows if row["id"] is not None],
        total=rows[0]["total"],
    )


async def insert_missing(
    conn: Conn, keys: Sequence[tuple[str, str, str]], last_activity: Sequence[datetime]
) -> None:
    """Create the conversations of these keys that do not exist yet (no identity
    value is drawn for one that does), with no messages counted."""
    await conn.execute(
        _INSERT_MISSING,
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
        list(last_activity),
    )


async def add_messages(
    conn: Conn, conversation_ids: Sequence[int], counts: Sequence[int], last: Sequence[datetime]
) -> None:
    """Count new messages in their conversations, locking those rows last, in key
    order (the last statement of a batch's transaction)."""
    await conn.execute(_ADD_MESSAGES, list(conversation_ids), list(counts), list(last))


async def exists(pool: asyncpg.Pool, conversation_id: int) -> bool:
    """Whether the conversation exists."""
    async with connection(pool) as conn:
        found: bool = await conn.fetchval(_EXISTS, conversation_id)
    return found


async def compact_counts(pool: asyncpg.Pool) -> int:
    """Fold conversation_counts into one row; how many rows were folded."""
    async with connection(pool) as conn:
        folded: int = await conn.fetchval(_COMPACT_COUNTS)
    return folded
