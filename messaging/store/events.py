"""The inbound-events queue as the worker and the operator see it: claims,
failures, stale claims, gauges, listing and replay.

Every statement is a named query in sql/inbound_events.sql. Functions that take
the pool translate driver errors (store/db.py); transient ones (deadlock,
serialization, lost connection) reach the caller as is, for it to retry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import NamedTuple

import asyncpg

from messaging.store.db import Conn, connection
from messaging.store.queries import query

# The channel the insert trigger notifies (triggers/inbound_events_notify.sql).
CHANNEL = "inbound_events"
STATUSES = ("received", "processing", "processed", "error", "dead_letter")

_CLAIM = query("inbound_events.sql", "claim_events")
_RECORD_FAILURES = query("inbound_events.sql", "record_failures")
_SELECT_STALE = query("inbound_events.sql", "select_stale_claims")
_RELEASE = query("inbound_events.sql", "release_claims")
_QUEUE_STATS = query("inbound_events.sql", "queue_stats")
_LIST = query("inbound_events.sql", "list_events")
_REPLAY = query("inbound_events.sql", "replay_events")
_REPLAY_DEAD = query("inbound_events.sql", "replay_dead_letters")
_NOTIFY = query("notify.sql", "notify")


class ClaimedEvent(NamedTuple):
    """An event this worker holds: status processing, its attempt counted.

    A NamedTuple rather than a frozen dataclass: a worker makes one per event,
    and a tuple is built from the claim's row in one step (claim_events answers
    its columns in this order)."""

    id: int
    channel: str
    provider_message_id: str
    message_type: str
    from_address: str  # normalised at ingest
    to_address: str  # normalised at ingest
    payload: str  # the webhook body as JSON text
    attempt_count: int  # including this attempt
    received_at: datetime


_BY_ID = attrgetter("id")


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed attempt to record: why, and how long until the next one."""

    event_id: int
    processor_id: str  # whose claim failed; a claim taken back since is left alone
    error: str
    delay_s: float


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a failure made of an event: 'error' (to be retried) or 'dead_letter'."""

    event_id: int
    status: str
    attempt_count: int


@dataclass(frozen=True, slots=True)
class StaleClaim:
    event_id: int
    processor_id: str
    attempt_count: int
    claimed_at: datetime


@dataclass(frozen=True, slots=True)
class QueueStats:
    due: int
    notification_queue_usage: float


@dataclass(frozen=True, slots=True)
class EventSummary:
    id: int
    channel: str
    provider_message_id: str
    message_type: str
    status: str
    attempt_count: int
    next_attempt_at: datetime
    last_error: str | None
    received_at: datetime


@dataclass(frozen=True, slots=True)
class ReplayResult:
    event_id: int
    status_before: str | None  # None: there is no such event
    requeued: bool


async def claim(pool: asyncpg.Pool, processor_id: str, limit: int) -> list[ClaimedEvent]:
    """Claim up to `limit` due events (committed at once), in id order."""
    async with connection(pool) as conn:
        rows = await conn.fetch(_CLAIM, processor_id, limit)
    return sorted(map(ClaimedEvent._make, rows), key=_BY_ID)


async def record_failures(
    pool: asyncpg.Pool, failures: Sequence[Failure], max_attempts: int
) -> list[Outcome]:
    """Record failed attempts: error with a retry time, or dead_letter."""
    if not failures:
        return []
    async with connection(pool) as conn:
        return await _record_failures(conn, failures, max_attempts)


async def _record_failures(
    conn: Conn, failures: Sequence[Failure], max_attempts: int
) -> list[Outcome]:
    rows = await conn.fetch(
        _RECORD_FAILURES,
        [f.event_id for f in failures],
        [f.processor_id for f in failures],
        [f.error for f in failures],
        [f.delay_s for f in failures],
        max_attempts,
    )
    return [Outcome(row["id"], row["status"], row["attempt_count"]) for row in rows]


async def return_stale_claims(
    pool: asyncpg.Pool,
    *,
    timeout_s: float,
    max_attempts: int,
    failure_for: Callable[[StaleClaim], Failure],
    limit: int,
) -> list[Outcome]:
    """Fail up to `limit` claims older than the timeout, in one transaction:
    retried later (reason recorded) or dead-lettered when out of attempts."""
    async with connection(pool) as conn, conn.transaction():
        rows = await conn.fetch(_SELECT_STALE, timeout_s, limit)
        stale = [
            StaleClaim(row["id"], row["processor_id"], row["attempt_count"], row["claimed_at"])
            for row in rows
        ]
        if not stale:
            return []
        return await _record_failures(conn, [failure_for(s) for s in stale], max_attempts)


async def release_claims(pool: asyncpg.Pool, event_ids: Sequence[int], processor_id: str) -> int:
    """Give claims back, their attempt not counted; how many were released."""
    async with connection(pool) as conn:
        status = await conn.execute(_RELEASE, list(event_ids), processor_id)
    return int(status.rsplit(" ", 1)[-1])


async def queue_stats(pool: asyncpg.Pool) -> QueueStats:
    async with connection(pool) as conn:
        row = await conn.fetchrow(_QUEUE_STATS)
    assert row is not None
    return QueueStats(due=row["due"], notification_queue_usage=row["notification_queue_usage"])


async def list_events(conn: Conn, status: str, limit: int) -> list[EventSummary]:
    rows = await conn.fetch(_LIST, status, limit)
    return [EventSummary(**dict(row)) for row in rows]


async def replay(conn: Conn, event_ids: Sequence[int]) -> list[ReplayResult]:
    """Requeue dead letters (and events waiting for a retry) with attempts reset,
    and wake the workers."""
    async with conn.transaction():
        rows = await conn.fetch(_REPLAY, list(event_ids))
        results = [ReplayResult(r["id"], r["status_before"], r["requeued"]) for r in rows]
        if any(r.requeued for r in results):
            await conn.execute(_NOTIFY, CHANNEL, "")
    return results


async def replay_dead_letters(conn: Conn) -> list[int]:
    """Requeue every dead letter with attempts reset, and wake the workers."""
    async with conn.transaction():
        ids = [row["id"] for row in await conn.fetch(_REPLAY_DEAD)]
        if ids:
            await conn.execute(_NOTIFY, CHANNEL, "")
    return sorted(ids)
