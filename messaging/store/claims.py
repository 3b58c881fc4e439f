"""The rows both queues answer with: the inbound events (inbound_events.py) and
the sends (messages.py) are claimed, failed and taken back from a stale claim
the same way, so the worker's loops and the one sweep (worker/sweep.py) speak of
both in these types."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


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
