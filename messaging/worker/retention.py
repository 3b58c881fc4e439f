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
its own that first takes the advisory lock RETENTION_LOCK, transaction-scoped:
one batch runs at a time across every worker process, nothing is held between
batches (so it works behind a transaction pooler), and a crashed holder's lock
ends with its transaction. After each batch that deleted rows comes a pause
(MESSAGING_PRUNE_PAUSE_MS): locks stay short, WAL is written in small steps, and
the webhooks' commits are never queued behind a long delete.

The worker's sweep runs a few batches per table at each sweep (see sweep.py) and
leaves the rest to the next, so that stale claims are never held up for long; a
sweep that finds the lock taken leaves the prune to the process that holds it.
`messaging prune` runs until nothing old is left, waiting its turn for the lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg

from messaging.config import Settings
from messaging.metrics import Metrics
from messaging.store import idempotency_keys, inbound_events, stream_events
from messaging.store.db import transaction, try_xact_lock

RETENTION_LOCK = "messaging.retention"

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

    async def prune(self, *, batches_per_table: int | None = None, wait: bool = False) -> Pruned:
        """Prune each table, batch by batch, until it has nothing old left or has
        run `batches_per_table` batches. When another process holds the lock: with
        `wait`, retry after a pause; without, stop (that process is pruning)."""
        pruned = Pruned()
        for table, delete, retention_s in self._tables():
            pruned.deleted[table] = 0
            batches = 0
            while batches_per_table is None or batches < batches_per_table:
                deleted = await self._batch(delete, retention_s)
                if deleted is None:
                    if not wait:
                        pruned.more = True
                        return pruned
                    await asyncio.sleep(max(self._policy.pause_s, 0.01))
                    continue
                batches += 1
                pruned.deleted[table] += deleted
                if deleted:
                    self._metrics.pruned(table, deleted)
                    await asyncio.sleep(self._policy.pause_s)
                if deleted < self._policy.batch_rows:
                    break
            else:
                pruned.more = True
        return pruned

    async def _batch(self, delete: Delete, retention_s: float) -> int | None:
        """One batch in a transaction of its own; None if the lock was taken."""
        async with transaction(self._pool) as conn:
            if not await try_xact_lock(conn, RETENTION_LOCK):
                return None
            return await delete(conn, retention_s=retention_s, limit=self._policy.batch_rows)
