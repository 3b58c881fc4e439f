"""The processes table: each running process's heartbeat (heartbeat.py), and the
list the operator's view reads (GET /api/admin/queues).

Every statement is a named query in processes.sql beside this module. Plain
rows written on pooled connections, one statement each: no advisory lock and no
other session state, so that the heartbeat works behind PgBouncer in
transaction mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from messaging.store.db import Conn, connection
from messaging.store.queries import query

_BEAT = query("processes.sql", "beat")
_DELETE = query("processes.sql", "delete_process")
_LIST = query("processes.sql", "list_processes")


@dataclass(frozen=True, slots=True)
class ProcessBeat:
    """What a process says of itself on every beat."""

    id: str  # hostname:pid:random (worker/runner.py:new_processor_id)
    kind: str  # 'serve', 'api' (serve --no-worker) or 'worker'
    host: str
    pid: int
    version: str
    heartbeat_secs: float
    listener_state: str  # worker/listener.py:ListenerState
    listener_since: datetime


@dataclass(frozen=True, slots=True)
class ProcessRow:
    """A process as the operator's view shows it."""

    id: str
    kind: str
    host: str
    pid: int
    version: str
    started_at: datetime
    heartbeat_at: datetime
    heartbeat_age_s: float
    fresh: bool  # beat within three of its periods
    listener_state: str
    listener_since: datetime

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> ProcessRow:
        return cls(**dict(row))


async def beat(pool: asyncpg.Pool, process: ProcessBeat, *, forget_after_s: float) -> None:
    """Write the process's row, and delete those silent for forget_after_s."""
    async with connection(pool) as conn:
        await conn.execute(
            _BEAT,
            process.id,
            process.kind,
            process.host,
            process.pid,
            process.version,
            process.heartbeat_secs,
            process.listener_state,
            process.listener_since,
            forget_after_s,
        )


async def delete(pool: asyncpg.Pool, process_id: str) -> None:
    async with connection(pool) as conn:
        await conn.execute(_DELETE, process_id)


async def list_processes(conn: Conn) -> list[ProcessRow]:
    return [ProcessRow.from_row(row) for row in await conn.fetch(_LIST)]
