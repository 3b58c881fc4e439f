"""The process's heartbeat: its row in the processes table, written every
MESSAGING_HEARTBEAT_SECS with the state of its LISTEN connection, so that the
operator's view (GET /api/admin/queues) lists every running process and whether
it still hears notifications.

Owned by whoever owns the process's resources: the app's cleanup context under
`messaging serve` (app.py), `_run_worker` under `messaging worker` (cli.py).
start() beats at once; a change of the listener's state is written within
STATE_CHECK_S rather than a whole period later, since it is what an operator
looks for. stop() ends the task and deletes the row, so that a clean stop leaves
the view at once; a process that dies leaves its row to go stale, and the
others forget it after FORGET_AFTER_S. A beat that fails (the database away) is
logged and tried again a period later: the heartbeat never stops the process.
Each beat is one statement on a pooled connection, with no advisory lock and no
session state (PgBouncer in transaction mode).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from datetime import UTC, datetime
from functools import cache
from importlib import metadata
from typing import Literal

import asyncpg

from messaging.store import processes
from messaging.worker.listener import Listener, ListenerState
from messaging.worker.loop import describe, log_failure

log = logging.getLogger(__name__)

ProcessKind = Literal["serve", "api", "worker"]
# A row not written for this long is a dead process's, and any beat deletes it.
FORGET_AFTER_S = 3600.0
# How often the listener's state is looked at between beats.
STATE_CHECK_S = 1.0


@cache
def version() -> str:
    try:
        return metadata.version("messaging")
    except metadata.PackageNotFoundError:
        return "unknown"


class Heartbeat:
    """Owns the task that writes this process's row."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        process_id: str,
        kind: ProcessKind,
        period_s: float,
        listener: Listener | None,
    ) -> None:
        self.process_id = process_id
        self._pool = pool
        self._kind = kind
        self._period_s = period_s
        self._listener = listener
        # Without a listener (MESSAGING_LISTEN=false) the state is off from the start.
        self._started_at = datetime.now(UTC)
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="heartbeat")

    async def stop(self) -> None:
        """End the task (a beat in progress finishes), then delete the row."""
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None
        try:
            await processes.delete(self._pool, self.process_id)
        except Exception as exc:
            # The row goes stale, and the other processes forget it in time.
            log.warning(
                "heartbeat row not deleted",
                extra={"action": "heartbeat_failed", "error": describe(exc)},
            )

    def current(self) -> processes.ProcessBeat:
        state, since = self._listener_state()
        return processes.ProcessBeat(
            id=self.process_id,
            kind=self._kind,
            host=socket.gethostname(),
            pid=os.getpid(),
            version=version(),
            heartbeat_secs=self._period_s,
            listener_state=state,
            listener_since=since,
        )

    async def beat_once(self) -> None:
        await processes.beat(self._pool, self.current(), forget_after_s=FORGET_AFTER_S)

    def _listener_state(self) -> tuple[ListenerState, datetime]:
        if self._listener is None:
            return "off", self._started_at
        return self._listener.state, self._listener.state_since

    async def _run(self) -> None:
        written: ListenerState | None = None
        last_beat = float("-inf")
        while not self._stopping.is_set():
            state, _since = self._listener_state()
            if state != written or time.monotonic() - last_beat >= self._period_s:
                # Counted as written even when it fails: the next try is a period
                # later, not every STATE_CHECK_S while the database is away.
                written, last_beat = state, time.monotonic()
                try:
                    await self.beat_once()
                except Exception as exc:
                    log_failure(log, "heartbeat failed", "heartbeat_failed", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._stopping.wait(), timeout=min(self._period_s, STATE_CHECK_S)
                )
