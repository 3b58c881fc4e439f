"""The inbound_events table: webhooks stored (the group commit's one INSERT), the
queue the worker claims from, failures and stale claims, gauges, and the
operator's counts, listing, replay and purge (the CLI and the admin API share
each function).

Every statement is a named query in inbound_events.sql beside this module.
Functions that take the pool translate driver errors (store/db.py); transient
ones (deadlock, serialization, lost connection) reach the caller as is, for it
to retry. Functions that take a connection run inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import NamedTuple

import asyncpg

from messaging.errors import DatabaseUnavailable
from messaging.models import InboundEvent
from messaging.store import claims
from messaging.store.claims import Failure, Outcome, StaleClaim
from messaging.store.db import Conn, connection
from messaging.store.queries import query

# The channel the insert trigger notifies (triggers/inbound_events_notify.sql).
CHANNEL = "inbound_events"

_INSERT = query("inbound_events.sql", "insert_events")
_FIND = query("inbound_events.sql", "find_event_ids")
_CLAIM = query("inbound_events.sql", "claim_events")
_LOCK_CLAIMS = query("inbound_events.sql", "lock_claims")
_MARK_PROCESSED = query("inbound_events.sql", "mark_processed")
_RECORD_FAILURES = query("inbound_events.sql", "record_failures")
_SELECT_STALE = query("inbound_events.sql", "select_stale_claims")
_RELEASE = query("inbound_events.sql", "release_claims")
_QUEUE_STATS = query("inbound_events.sql", "queue_stats")
_STATUS_COUNTS = query("inbound_events.sql", "status_counts")
_LIST = query("inbound_events.sql", "list_events")
_COUNT = query("inbound_events.sql", "count_events")
_PURGE = query("inbound_events.sql", "purge_dead_letter")
_REPLAY = query("inbound_events.sql", "replay_events")
_REPLAY_DEAD = query("inbound_events.sql", "replay_dead_letters")
_PRUNE = query("inbound_events.sql", "prune_events")
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

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> ClaimedEvent:
        return cls._make(row)


_BY_ID = attrgetter("id")


@dataclass(frozen=True, slots=True)
class Stored:
    """The committed row a webhook maps to; created is False for a duplicate."""

    id: int
    created: bool


@dataclass(frozen=True, slots=True)
class QueueStats:
    due: int
    oldest_due_age_s: float  # how long the oldest due event has been due; 0: none is
    notification_queue_usage: float


@dataclass(frozen=True, slots=True)
class StatusCounts:
    """Events by status: exact but for the processed ones, which are estimated
    (None until the table's statistics know its size)."""

    received: int
    error: int
    processing: int
    dead_letter: int
    processed_estimate: int | None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> StatusCounts:
        return cls(**dict(row))


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

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> EventSummary:
        return cls(**dict(row))


@dataclass(frozen=True, slots=True)
class ReplayResult:
    event_id: int
    status_before: str | None  # None: there is no such event
    requeued: bool

    @property
    def refusal(self) -> str | None:
        """Why it was not requeued (the CLI's and the API's words), or None."""
        if self.requeued:
            return None
        if self.status_before is None:
            return "no such event"
        return f"status is {self.status_before}; only dead_letter and error are replayed"


@dataclass(frozen=True, slots=True)
class Purge:
    status_before: str | None  # None: there is no such event
    purged: bool


async def insert(conn: Conn, events: Sequence[InboundEvent]) -> list[Stored]:
    """Store webhooks with one multi-row INSERT; each one's row, in input order. A
    key stored before answers its existing id (created False); of in-batch copies
    of one key, the first is created. NULL ids can only come from a concurrent
    insert of the same key after this statement's snapshot: they are looked up
    again (find_event_ids), and raise DatabaseUnavailable if still missing."""
    rows = await conn.fetch(
        _INSERT,
        [e.channel for e in events],
        [e.provider_message_id for e in events],
        [e.message_type for e in events],
        [e.from_address for e in events],
        [e.to_address for e in events],
        [e.payload for e in events],
    )
    ids = [row["id"] for row in rows]
    missing = [i for i, id_ in enumerate(ids) if id_ is None]
    if missing:
        found = await conn.fetch(
            _FIND,
            [events[i].channel for i in missing],
            [events[i].provider_message_id for i in missing],
        )
        for row in found:
            ids[missing[row["ord"] - 1]] = row["id"]
        if any(id_ is None for id_ in ids):
            raise DatabaseUnavailable("a concurrent insert could not be read back; retry")
    return [Stored(id=id_, created=row["created"]) for id_, row in zip(ids, rows, strict=True)]


async def claim(pool: asyncpg.Pool, processor_id: str, limit: int) -> list[ClaimedEvent]:
    """Claim up to `limit` due events (committed at once), in id order."""
    async with connection(pool) as conn:
        rows = await conn.fetch(_CLAIM, processor_id, limit)
    return sorted(map(ClaimedEvent.from_row, rows), key=_BY_ID)


async def lock_claims(conn: Conn, event_ids: Sequence[int], processor_id: str) -> set[int]:
    """In a batch's transaction, first: lock the events still claimed by this
    processor (in id order); their ids."""
    return {row["id"] for row in await conn.fetch(_LOCK_CLAIMS, list(event_ids), processor_id)}


async def mark_processed(conn: Conn, event_ids: Sequence[int]) -> None:
    """In a batch's transaction, after its messages are inserted."""
    await conn.execute(_MARK_PROCESSED, list(event_ids))


async def record_failures(
    pool: asyncpg.Pool, failures: Sequence[Failure], max_attempts: int
) -> list[Outcome]:
    """Record failed attempts: error with a retry time, or dead_letter."""
    if not failures:
        return []
    async with connection(pool) as conn:
        return await fail_claims(conn, failures, max_attempts)


async def fail_claims(conn: Conn, failures: Sequence[Failure], max_attempts: int) -> list[Outcome]:
    """Failed attempts, on the caller's connection: error with a retry time, or
    dead_letter once out of attempts (decided in SQL)."""
    return await claims.record(conn, _RECORD_FAILURES, failures, max_attempts)


async def select_stale(conn: Conn, timeout_s: float, limit: int) -> list[StaleClaim]:
    """Claims older than the timeout, locked (SKIP LOCKED) for the caller's
    transaction, oldest first."""
    return await claims.select_stale(conn, _SELECT_STALE, timeout_s, limit)


async def release_claims(pool: asyncpg.Pool, event_ids: Sequence[int], processor_id: str) -> int:
    """Give claims back, their attempt not counted; how many were released."""
    async with connection(pool) as conn:
        status = await conn.execute(_RELEASE, list(event_ids), processor_id)
    return int(status.rsplit(" ", 1)[-1])


async def queue_stats(pool: asyncpg.Pool) -> QueueStats:
    async with connection(pool) as conn:
        row = await conn.fetchrow(_QUEUE_STATS)
    assert row is not None
    return QueueStats(
        due=row["due"],
        oldest_due_age_s=row["oldest_due_age_s"],
        notification_queue_usage=row["notification_queue_usage"],
    )


async def status_counts(conn: Conn) -> StatusCounts:
    row = await conn.fetchrow(_STATUS_COUNTS)
    assert row is not None
    return StatusCounts.from_row(row)


async def list_events(
    conn: Conn, status: str, limit: int, *, offset: int = 0
) -> list[EventSummary]:
    """A page of the events in one status, oldest first (the CLI's `events` and
    the operator's API)."""
    rows = await conn.fetch(_LIST, status, limit, offset)
    return [EventSummary.from_row(row) for row in rows]


async def count_events(conn: Conn, status: str) -> int:
    """How many events are dead letters, or in error (the statuses that stay few)."""
    if status not in ("dead_letter", "error"):
        raise ValueError(f"only dead letters and errors are counted, not {status!r}")
    total: int = await conn.fetchval(_COUNT, status)
    return total


async def purge_dead_letter(conn: Conn, event_id: int) -> Purge:
    """Delete one dead letter for good; an event in another status is left alone."""
    row = await conn.fetchrow(_PURGE, event_id)
    assert row is not None
    return Purge(row["status_before"], row["purged"])


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


async def prune(conn: Conn, *, retention_s: float, limit: int) -> int:
    """Delete up to `limit` of the processed events received longer than the
    retention ago, oldest first; how many were deleted."""
    deleted: int = await conn.fetchval(_PRUNE, retention_s, limit)
    return deleted
