"""The way of a webhook into the database, group-committed: concurrent webhooks
share one INSERT and one commit (store/inbound_events.py:insert).

Every notifying transaction holds a server-wide lock through its commit (that is
how PostgreSQL orders NOTIFY), so one commit per webhook caps ingest at a few
thousand per second however many connections there are. Here, requests put
their event in a queue and wait; a small number of writer tasks each take
everything queued (up to a maximum), store it with one multi-row INSERT, and
answer each waiting request with its own row id only after that statement has
committed.

- A lone request on an idle service finds a writer waiting and commits at once:
  there is no timer. Batching comes only from requests that arrive while a
  commit is in flight.
- A batch that the database refuses as a whole is retried one row at a time, so
  each request gets its own outcome and never another request's error.
- An outage fails only the requests of the batches it hit, each with
  DatabaseUnavailable (503): never a 202 without a commit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence

import asyncpg

from messaging.errors import DatabaseRejected, DatabaseUnavailable
from messaging.metrics import Metrics
from messaging.models import InboundEvent
from messaging.store import inbound_events
from messaging.store.db import connection
from messaging.store.inbound_events import Stored

log = logging.getLogger(__name__)


class EventWriter:
    """Stores webhooks, sharing commits between concurrent requests.

    Owns its writer tasks: start() launches them, close() lets them finish what
    is queued and then cancels and awaits them.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        metrics: Metrics,
        *,
        writers: int,
        max_batch: int,
        group_commit: bool = True,
    ) -> None:
        self._pool = pool
        self._metrics = metrics
        self._writers = writers
        self._max_batch = max_batch
        self._group_commit = group_commit
        self._queue: deque[tuple[InboundEvent, asyncio.Future[Stored]]] = deque()
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None

    async def store(self, event: InboundEvent) -> Stored:
        """Store one event; returns once its row is committed."""
        if self._closing:
            raise DatabaseUnavailable("the service is shutting down")
        if not self._group_commit:
            return (await self._write([event]))[0]
        future: asyncio.Future[Stored] = (self._loop or asyncio.get_running_loop()).create_future()
        self._queue.append((event, future))
        self._ready.set()
        return await future

    def start(self) -> None:
        # Looked up once: on Python 3.11 every get_running_loop() costs a getpid().
        self._loop = asyncio.get_running_loop()
        if self._group_commit:
            self._tasks = [
                asyncio.create_task(self._run(), name=f"ingest-writer-{i}")
                for i in range(self._writers)
            ]

    async def close(self) -> None:
        """Stop taking requests, commit what is queued, then let the writers end."""
        self._closing = True
        self._ready.set()
        await asyncio.gather(*self._tasks)
        self._tasks = []

    async def _run(self) -> None:
        while True:
            await self._ready.wait()
            batch = self._take()
            if batch:
                await self._commit(batch)
            elif self._closing:
                return

    async def _commit(self, batch: list[tuple[InboundEvent, asyncio.Future[Stored]]]) -> None:
        events = [event for event, _ in batch]
        # Until the database answers, every request of the batch has failed:
        # whatever stops this coroutine early (even cancellation) answers 503.
        results: Sequence[Stored | BaseException] = [
            DatabaseUnavailable("the write was interrupted")
        ] * len(batch)
        try:
            results = await self._write(events)
        except DatabaseRejected:
            results = await self._write_one_by_one(events)
        except Exception as exc:
            results = [exc] * len(batch)
        finally:
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    def _take(self) -> list[tuple[InboundEvent, asyncio.Future[Stored]]]:
        batch: list[tuple[InboundEvent, asyncio.Future[Stored]]] = []
        while self._queue and len(batch) < self._max_batch:
            batch.append(self._queue.popleft())
        if not self._queue and not self._closing:
            self._ready.clear()
        return batch

    async def _write_one_by_one(self, events: list[InboundEvent]) -> list[Stored | BaseException]:
        results: list[Stored | BaseException] = []
        for event in events:
            try:
                results.append((await self._write([event]))[0])
            except Exception as exc:
                results.append(exc)
        return results

    async def _write(self, events: list[InboundEvent]) -> list[Stored]:
        started = time.perf_counter()
        async with connection(self._pool) as conn:
            stored = await inbound_events.insert(conn, events)
        self._metrics.ingest_committed(len(events), time.perf_counter() - started)
        return stored
