"""Retention: deletes what the service needs only for a while, in small batches.

Three tables grow with traffic and are needed for a time only:
- processed inbound events, after MESSAGING_EVENT_RETENTION_SECS (7 days): the
  window in which a provider's retry is answered as a duplicate. Their messages
  stay, and a message is unique on its provider's key, so a retry after the
  window makes no second message either (migration 20261206120000);
- Idempotency-Keys of sends, after MESSAGING_IDEMPOTENCY_KEY_RETENTION_SECS (24 h);
- the event stream's log, after MESSAGING_STREAM_RETENTION_SECS (24 h).
Dead letters, messages (failed sends among them) and conversations are never
pruned here.

Each batch (MESSAGING_PRUNE_BATCH_ROWS rows, oldest first) is a transaction of
its own that first takes its turn (store/retention_state.sql): an advisory lock,
transaction-scoped, so that one batch runs at a time across every process and
nothing is held between batches (it works behind a transaction pooler, and a
crashed holder's lock ends with its transaction), and the pause: a batch starts
only MESSAGING_PRUNE_PAUSE_MS after the last one that deleted rows ended,
whichever process ran it. So locks stay short, WAL is written in small steps,
the webhooks' commits are never queued behind a long delete, and N workers
prune no faster than one. The tables take turns, a batch each.

The worker's sweep prunes for a bounded time at each sweep (see sweep.py) and
leaves the rest to the next, so that stale claims are never held up for long; a
sweep that finds another process's batch running, or its pause not over, leaves
the prune to the next sweep. `messaging prune` runs until nothing old is left,
waiting its turns.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg

from messaging.config import Settings
from messaging.metrics import Metrics
from messaging.store import idempotency_keys, inbound_events, retention_state, stream_events
from messaging.store.db import transaction

# One table's prune: (conn, retention_s=, limit=) -> rows deleted.
Delete = Callable[..., Awaitable[int]]


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long each table keeps its rows (0: for good), and the batches' size
    and pause."""

    events_s: float
    idempotency_keys_s: float
    stream_s: float
    batch_rows: int
    pause_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(
            events_s=settings.event_retention_secs,
            idempotency_keys_s=settings.idempotency_key_retention_secs,
            stream_s=settings.stream_retention_secs,
            batch_rows=settings.prune_batch_rows,
            pause_s=settings.prune_pause_ms / 1000,
        )


@dataclass(slots=True)
class Pruned:
    """What one prune deleted, by table, and whether it left old rows behind."""

    deleted: dict[str, int] = field(default_factory=dict)
    # Old rows may remain: the prune stopped at its batch budget, or found the
    # lock held by another process's prune.
    more: bool = False

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


class Pruner:
    def __init__(self, pool: asyncpg.Pool, metrics: Metrics, policy: RetentionPolicy) -> None:
        self._pool = pool
        self._metrics = metrics
        self._policy = policy

    def _tables(self) -> list[tuple[str, Delete, float]]:
        p = self._policy
        tables: list[tuple[str, Delete, float]] = [
            ("inbound_events", inbound_events.prune, p.events_s),
            ("idempotency_keys", idempotency_keys.prune, p.idempotency_keys_s),
            ("stream_events", stream_events.prune, p.stream_s),
        ]
        return [t for t in tables if t[2] > 0]

    async def prune(self, *, budget_s: float | None = None, wait: bool = False) -> Pruned:
        """Prune the tables in turn, a batch each, until none has anything old
        left or `budget_s` has passed. When it is not this process's turn (another
        process's batch runs, or the pause is not over): with `wait`, try again
        after a pause; without, stop (another process is pruning)."""
        deadline = None if budget_s is None else time.monotonic() + budget_s
        tables = self._tables()
        pruned = Pruned(deleted={table: 0 for table, _, _ in tables})
        while tables:
            for entry in list(tables):
                if deadline is not None and time.monotonic() >= deadline:
                    pruned.more = True
                    return pruned
                table, delete, retention_s = entry
                deleted = await self._batch(delete, retention_s)
                if deleted is None:
                    if not wait:
                        pruned.more = True
                        return pruned
                    await asyncio.sleep(max(self._policy.pause_s, 0.01))
                    continue
                if deleted < self._policy.batch_rows:
                    tables.remove(entry)
                if deleted:
                    pruned.deleted[table] += deleted
                    self._metrics.pruned(table, deleted)
                    await asyncio.sleep(self._policy.pause_s)
        return pruned

    async def _batch(self, delete: Delete, retention_s: float) -> int | None:
        """One batch in a transaction of its own; None if it was not our turn."""
        async with transaction(self._pool) as conn:
            if not await retention_state.take_turn(conn, self._policy.pause_s):
                return None
            deleted = await delete(conn, retention_s=retention_s, limit=self._policy.batch_rows)
            if deleted:
                await retention_state.end_turn(conn)
            return deleted
