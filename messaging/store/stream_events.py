"""The stream's log (table stream_events): the changes of messages in stream
order, read after a position; where a new consumer starts; pruning.

A position is (xid, id): the writing transaction's id, then the row's identity.
Rows are only ever read once final (their transaction older than every one
still in flight: stream_events.sql says why), so a reader that has passed a
position never finds a row behind it later. The rows are written by the
triggers on messages (schema/triggers/messages_stream.sql), never from Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from messaging.models import StreamPosition as Position
from messaging.store.db import Conn, connection
from messaging.store.messages import MessageRecord
from messaging.store.queries import query

# The channel the log's triggers notify (triggers/messages_stream.sql).
CHANNEL = "stream_events"

_READ = query("stream_events.sql", "read_events")
_HEAD = query("stream_events.sql", "head")
_PRUNE = query("stream_events.sql", "prune_events")


ORIGIN = Position(0, 0)


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One change, as the stream tells it: the message as the lists show it,
    with the status this change left it in."""

    position: Position
    type: str  # 'message.created' or 'message.updated'
    message: MessageRecord


@dataclass(frozen=True, slots=True)
class Read:
    """What one read of the log found after a position."""

    events: list[LoggedEvent]  # final, in position order
    # Committed events wait behind a transaction still in flight: read again soon.
    held_back: bool
    # The position is older than the log's horizon: events after it were pruned.
    gone: bool


async def read_after(
    pool: asyncpg.Pool,
    after: Position,
    *,
    conversation_id: int | None,
    limit: int,
    body_chars: int,
) -> Read:
    """Up to `limit` final events after `after` (of one conversation, if given)."""
    async with connection(pool) as conn:
        rows = await conn.fetch(_READ, after.xid, after.id, conversation_id, limit, body_chars)
    events = []
    held_back = False
    for row in rows:
        if row["xid"] is None:
            break
        if not row["final"]:
            held_back = True
            break
        events.append(
            LoggedEvent(
                position=Position(row["xid"], row["position_id"]),
                type=row["type"],
                message=MessageRecord.from_row(row),
            )
        )
    return Read(events=events, held_back=held_back, gone=bool(rows[0]["gone"]))


async def head(pool: asyncpg.Pool) -> Position:
    """The newest final position: where a consumer that names none starts."""
    async with connection(pool) as conn:
        row = await conn.fetchrow(_HEAD)
    assert row is not None  # the horizon's row is always there
    return Position(row["xid"], row["id"])


async def prune(conn: Conn, *, retention_s: float, limit: int) -> int:
    """Delete up to `limit` of the oldest events older than the retention, moving
    the horizon (in the caller's transaction); how many were deleted."""
    deleted: int = await conn.fetchval(_PRUNE, retention_s, limit)
    return deleted
