"""Turning a batch of claimed inbound events into messages and conversations:
one transaction, one statement per step, however many events.

The transaction, in order:
1. lock_claims: lock the batch's events still claimed by this processor (in id
   order); events whose claim the sweep took back are left out;
2. insert_missing_conversations: create the conversations that do not exist yet;
3. insert_inbound_messages: insert the messages (unique on their event);
4. finish_batch: mark the events processed, then add the new messages to their
   conversations' counts and last activity. The conversations, the only rows
   that concurrent batches share, are locked in this last statement so that
   they stay locked for as short a time as possible.

It commits all of the batch or none of it; the caller isolates a failing event
by retrying smaller batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import asyncpg

from messaging.store.db import connection
from messaging.store.queries import query

_LOCK_CLAIMS = query("inbound_events.sql", "lock_claims")
_INSERT_CONVERSATIONS = query("conversations.sql", "insert_missing_conversations")
_INSERT_MESSAGES = query("messages.sql", "insert_inbound_messages")
_FINISH = query("inbound_events.sql", "finish_batch")


class NewMessage(NamedTuple):
    """The message an inbound event becomes, with its conversation's key.
    (A NamedTuple: one per event, so cheap to build and to transpose into the
    statement's columns.)"""

    event_id: int
    kind: str  # conversation kind: 'sms' (SMS and MMS) or 'email'
    participant_a: str  # participant_a <= participant_b (normalize.conversation_key)
    participant_b: str
    message_type: str
    from_address: str
    to_address: str
    body: str
    attachments: str  # a JSON array of URLs
    sent_at: datetime
    provider_message_id: str


@dataclass(frozen=True, slots=True)
class Committed:
    """What a batch's transaction did."""

    event_ids: list[int]  # events marked processed
    messages: int  # messages inserted (fewer than events if some existed already)


async def commit_batch(
    pool: asyncpg.Pool, processor_id: str, batch: Sequence[NewMessage]
) -> Committed:
    """Store a batch's messages and conversations and mark its events processed,
    in one transaction. Events no longer claimed by processor_id are skipped."""
    async with connection(pool) as conn, conn.transaction():
        held = {
            row["id"]
            for row in await conn.fetch(_LOCK_CLAIMS, [m.event_id for m in batch], processor_id)
        }
        mine = [m for m in batch if m.event_id in held]
        if not mine:
            return Committed(event_ids=[], messages=0)
        last_activity: dict[tuple[str, str, str], datetime] = {}
        for m in mine:
            key = (m.kind, m.participant_a, m.participant_b)
            if key not in last_activity or m.sent_at > last_activity[key]:
                last_activity[key] = m.sent_at
        await conn.execute(
            _INSERT_CONVERSATIONS,
            [k[0] for k in last_activity],
            [k[1] for k in last_activity],
            [k[2] for k in last_activity],
            list(last_activity.values()),
        )
        # One list per column, in NewMessage's field order (the statement's $1..$11).
        columns = [list(column) for column in zip(*mine, strict=True)]
        gained = await conn.fetch(_INSERT_MESSAGES, *columns)
        event_ids = columns[0]
        await conn.execute(
            _FINISH,
            event_ids,
            [row["id"] for row in gained],
            [row["messages"] for row in gained],
            [row["last_sent_at"] for row in gained],
        )
    return Committed(event_ids=event_ids, messages=sum(row["messages"] for row in gained))
