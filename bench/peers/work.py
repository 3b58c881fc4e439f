"""The peers' "same work" job: what the service's worker does for one event,
done by one job in one transaction of its own.

The job's payload is what the worker reads of a stored event (its id, type,
addresses, provider id, body, attachments, timestamp; bench/sql/peer_work.sql
events_as_jobs). The job checks and shapes it with the service's own rules, as
the worker does (messaging/worker/inbound.py to_message), then writes the
message, its conversation's count and last activity, and the event marked
processed, in one statement (bench/sql/peer_work.sql same_work). The events are
in the service's tables (a migrated database), inserted beforehand in bulk as
for the service's drain: messages must reference their event.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from bench.peers.common import POOL_SIZE
from bench.queries import query
from messaging.models import (
    channel_of,
    check_attachments,
    check_body,
    check_sent_at,
    conversation_key,
)

ENTRYPOINT = "same_work"
_EVENTS = query("peer_work.sql", "events_as_jobs")
_SAME_WORK = query("peer_work.sql", "same_work")

Job = Callable[[dict[str, Any]], Awaitable[None]]


async def event_jobs(url: str) -> list[str]:
    """One job payload (a JSON object) per event waiting in the database."""
    conn = await asyncpg.connect(url)
    try:
        return [row["job"] for row in await conn.fetch(_EVENTS)]
    finally:
        await conn.close()


def arguments(event: dict[str, Any]) -> list[Any]:
    """The statement's $1..$11 from a job's payload, by the rules the service's
    worker applies to an event (a bad payload raises, as it fails there)."""
    message_type = event["type"]
    kind, participant_a, participant_b = conversation_key(
        channel_of(message_type), event["from"], event["to"]
    )
    attachments = check_attachments(event.get("attachments"), message_type)
    return [
        event["event_id"],
        kind,
        participant_a,
        participant_b,
        message_type,
        event["from"],
        event["to"],
        check_body(event.get("body"), message_type),
        json.dumps(list(attachments)) if attachments else "[]",
        check_sent_at(event.get("timestamp")),
        event["messaging_provider_id"],
    ]


@asynccontextmanager
async def same_work(url: str) -> AsyncIterator[Job]:
    """The job, over a pool of the service's size (MESSAGING_POOL_SIZE) that
    the peer's concurrent jobs share, as the service's batches share theirs."""
    async with asyncpg.create_pool(url, min_size=POOL_SIZE, max_size=POOL_SIZE) as pool:

        async def job(event: dict[str, Any]) -> None:
            await pool.execute(_SAME_WORK, *arguments(event))

        yield job
