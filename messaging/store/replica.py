"""Where list reads go: a streaming replica while it is fresh, the primary otherwise.

Reads.run(read) runs a read against the replica's pool when one is configured
(MESSAGING_READ_DATABASE_URL), answers its lag check, and is at most
MESSAGING_READ_MAX_LAG_MS behind the primary; otherwise, or when the read fails
there, against the primary's. A replica that is down or lagging costs a read
nothing but the detour: it never fails a request the primary can answer.
messaging_reads_total{database} counts where reads went,
messaging_replica_fallbacks_total{reason} why one meant for the replica did not.

Only reads that may be a moment old go through Reads (the conversation list).
Reads that must see the caller's own writes stay on the primary; http/ says
which.

How far behind: every check_interval_s the Replica reads the primary's WAL
position, then the position the replica has replayed. The replica holds at
least what the primary held at the newest sampled position it has replayed, so
it is at most (now - that sample's time) behind. The estimate errs on the old
side by up to one interval, and it ages between checks: a check that stops
answering makes the replica stale by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from messaging.errors import DatabaseFailed, DatabaseUnavailable
from messaging.metrics import Metrics
from messaging.store.db import connection, create_pool
from messaging.store.queries import query

log = logging.getLogger(__name__)

T = TypeVar("T")

_WAL_POSITION = query("db.sql", "wal_position")
_REPLAY_POSITION = query("db.sql", "replay_position")

# How long a request waits for a replica connection, and for the whole read
# there, before it reads from the primary instead: a replica that does not
# answer must not hold reads up long (a list page takes milliseconds).
REPLICA_ACQUIRE_TIMEOUT_S = 1.0
REPLICA_READ_TIMEOUT_S = 2.0


class Replica:
    """Owns the replica's pool and the task that measures how far behind it is:
    open() starts both, close() stops the task and closes the pool."""

    def __init__(
        self,
        url: str,
        primary: asyncpg.Pool,
        metrics: Metrics,
        *,
        max_lag_s: float,
        pool_size: int,
        check_interval_s: float | None = None,
    ) -> None:
        self._url = url
        self._primary = primary
        self._metrics = metrics
        self.max_lag_s = max_lag_s
        self._pool_size = pool_size
        # Four checks within the allowed lag, so that the estimate's error (up to
        # one interval) is a quarter of it; never more often than every 50 ms.
        self._interval_s = check_interval_s or min(1.0, max(0.05, max_lag_s / 4))
        self._pool: asyncpg.Pool | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        # (monotonic time, primary WAL position) of recent checks, oldest first.
        self._samples: deque[tuple[float, int]] = deque()
        # Whether the last check answered.
        self.up = False
        # Monotonic time of the newest sample the replica has replayed; None while
        # it is down, and until it has replayed one.
        self._current_as_of: float | None = None
        self._last_error: str | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the replica is not open")
        return self._pool

    async def open(self) -> None:
        self._pool = await create_pool(
            self._url, size=self._pool_size, timeout_s=REPLICA_ACQUIRE_TIMEOUT_S
        )
        self._metrics.replica_checked(up=False, lag_s=None)
        self._task = asyncio.create_task(self._run(), name="replica-lag-check")

    async def close(self) -> None:
        self._stop.set()
        try:
            if self._task is not None:
                await self._task
                self._task = None
        finally:
            if self._pool is not None:
                await self._pool.close()
                self._pool = None

    def lag_s(self) -> float | None:
        """How far behind the replica may be now; None while it is down or not
        known to have caught up with any sampled position."""
        if self._current_as_of is None:
            return None
        return time.monotonic() - self._current_as_of

    def failed(self, exc: BaseException) -> None:
        """A read on the replica failed: the primary takes reads until the next
        check succeeds."""
        if self.up:
            log.warning(
                "read replica failed a read; reading from the primary",
                extra={"action": "replica_read_failed", "error": str(exc)},
            )
        self._down(str(exc))

    def details(self) -> dict[str, object]:
        """For /readyz (informational: reads fall back, so the replica never makes
        a process unready)."""
        lag = self.lag_s()
        details: dict[str, object] = {
            "up": self.up,
            "lag_ms": None if lag is None else round(lag * 1000, 1),
            "max_lag_ms": round(self.max_lag_s * 1000),
        }
        if not self.up and self._last_error:
            details["error"] = self._last_error
        return details

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await self._check()
            except Exception as exc:
                # Whatever fails the check (unforeseen errors too, with their
                # traceback) takes reads off the replica until a check answers.
                expected = isinstance(exc, DatabaseUnavailable | DatabaseFailed)
                if self.up or self._last_error is None:
                    log.log(
                        logging.WARNING if expected else logging.ERROR,
                        "read replica unavailable; reading from the primary",
                        exc_info=not expected,
                        extra={"action": "replica_down", "error": f"{type(exc).__name__}: {exc}"},
                    )
                self._down(f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self._interval_s)

    async def _check(self) -> None:
        started = time.monotonic()
        try:
            async with connection(self._primary) as conn:
                position = await conn.fetchval(_WAL_POSITION, timeout=self._interval_s + 1)
        except (DatabaseUnavailable, DatabaseFailed) as exc:
            # The primary's fault, not the replica's: no sample this time, and
            # the estimate ages (the replica is read from only while it is
            # known to be recent).
            log.debug("no WAL position from the primary", extra={"error": str(exc)})
            self._metrics.replica_checked(up=self.up, lag_s=self.lag_s())
            return
        self._samples.append((started, position))
        async with connection(self.pool) as conn:
            replayed: int = await conn.fetchval(_REPLAY_POSITION, timeout=self._interval_s + 1)
        for sampled_at, sampled in self._samples:
            if sampled <= replayed:
                self._current_as_of = sampled_at
        # Samples older than the newest one replayed tell nothing more (replay
        # only moves forward); the window is bounded however far behind it is.
        while self._samples and (
            self._samples[0][0] < (self._current_as_of or 0) or len(self._samples) > 10_000
        ):
            self._samples.popleft()
        was_down = not self.up
        self.up = True
        self._last_error = None
        # Behind every position sampled since it came up: how far is not known
        # yet, so it is not read from (lag_s() None) until it has caught up.
        lag = self.lag_s()
        self._metrics.replica_checked(up=True, lag_s=lag)
        if was_down:
            log.info(
                "read replica answers",
                extra={
                    "action": "replica_up",
                    "lag_ms": None if lag is None else round(lag * 1000),
                },
            )

    def _down(self, error: str) -> None:
        self.up = False
        self._current_as_of = None
        self._last_error = error
        self._samples.clear()
        self._metrics.replica_checked(up=False, lag_s=None)


class Reads:
    """Runs reads that may be a moment old: on the replica while it is fresh,
    on the primary otherwise (and when the replica fails the read)."""

    def __init__(self, primary: asyncpg.Pool, metrics: Metrics, replica: Replica | None) -> None:
        self._primary = primary
        self._metrics = metrics
        self.replica = replica

    async def run(self, read: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
        replica = self.replica
        if replica is not None:
            lag = replica.lag_s()
            if not replica.up:
                self._metrics.replica_fallback("down")
            elif lag is None or lag > replica.max_lag_s:
                self._metrics.replica_fallback("lagging")
            else:
                try:
                    async with asyncio.timeout(REPLICA_READ_TIMEOUT_S):
                        result = await read(replica.pool)
                except (DatabaseUnavailable, DatabaseFailed, TimeoutError) as exc:
                    replica.failed(exc)
                    self._metrics.replica_fallback("failed")
                else:
                    self._metrics.read_served("replica")
                    return result
        result = await read(self._primary)
        self._metrics.read_served("primary")
        return result
