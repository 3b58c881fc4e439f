"""The rows both queues answer with: the inbound events (inbound_events.py) and
the sends (messages.py) are claimed, failed and taken back from a stale claim
the same way, so the worker's loops and the one sweep (worker/sweep.py) speak of
both in these types."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from messaging.store.db import Conn


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed attempt to record: why, and how long until the next one."""

    id: int
    processor_id: str  # whose claim failed; a claim taken back since is left alone
    error: str
    delay_s: float


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a failure made of a row: retried later, or given up (gave_up: an event
    dead-lettered, a send failed)."""

    id: int
    channel: str
    status: str
    attempt_count: int
    gave_up: bool

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Outcome:
        return cls(row["id"], row["channel"], row["status"], row["attempt_count"], row["gave_up"])


@dataclass(frozen=True, slots=True)
class StaleClaim:
    """A claim older than the claim timeout: its worker died or hung."""

    id: int
    channel: str
    processor_id: str
    attempt_count: int
    claimed_at: datetime

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> StaleClaim:
        return cls(
            row["id"], row["channel"], row["processor_id"], row["attempt_count"], row["claimed_at"]
        )


async def select_stale(
    conn: Conn, statement: str, timeout_s: float, limit: int
) -> list[StaleClaim]:
    """Run a queue's select-stale statement ($1 timeout, $2 limit)."""
    return [StaleClaim.from_row(row) for row in await conn.fetch(statement, timeout_s, limit)]


async def record(
    conn: Conn, statement: str, failures: Sequence[Failure], max_attempts: int
) -> list[Outcome]:
    """Run a queue's record-failures statement: one array per Failure field, then
    the attempts allowed; SQL decides whether each row is out of attempts."""
    rows = await conn.fetch(
        statement,
        [f.id for f in failures],
        [f.processor_id for f in failures],
        [f.error for f in failures],
        [f.delay_s for f in failures],
        max_attempts,
    )
    return [Outcome.from_row(row) for row in rows]
