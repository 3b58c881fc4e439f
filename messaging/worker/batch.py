"""Turning a batch of claimed inbound events into messages and conversations:
one transaction, one statement per step, however many events.

The transaction, in order:
1. inbound_events.lock_claims: lock the batch's events still claimed by this
   processor (in id order); events whose claim the sweep took back are left out;
2. conversations.insert_missing: create the conversations that do not exist yet;
3. messages.insert_inbound: insert the messages (unique on their provider key);
4. inbound_events.mark_processed;
5. conversations.add_messages: add the new messages to their conversations'
   counts and last activity. The conversations, the only rows that concurrent
   batches share, are locked in this last statement so that they stay locked
   for as short a time as possible.

It commits all of the batch or none of it; the caller isolates a failing event
by retrying smaller batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from messaging.store import conversations, inbound_events, messages
from messaging.store.db import transaction
from messaging.store.messages import NewMessage


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
    async with transaction(pool) as conn:
        held = await inbound_events.lock_claims(conn, [m.event_id for m in batch], processor_id)
        mine = [m for m in batch if m.event_id in held]
        if not mine:
            return Committed(event_ids=[], messages=0)
        last_activity: dict[tuple[str, str, str], datetime] = {}
        for m in mine:
            key = (m.kind, m.participant_a, m.participant_b)
            if key not in last_activity or m.sent_at > last_activity[key]:
                last_activity[key] = m.sent_at
        await conversations.insert_missing(conn, list(last_activity), list(last_activity.values()))
        gained = await messages.insert_inbound(conn, mine)
        event_ids = [m.event_id for m in mine]
        await inbound_events.mark_processed(conn, event_ids)
        await conversations.add_messages(
            conn,
            [g.conversation_id for g in gained],
            [g.messages for g in gained],
            [g.last_sent_at for g in gained],
        )
    return Committed(event_ids=event_ids, messages=sum(g.messages for g in gained))
