"""The LISTEN connection's side of the database: a dedicated connection outside
the pool (a pooled one would be reset, and its LISTENs dropped, on release) and
the notification the listener sends itself to prove the connection alive."""

from __future__ import annotations

import asyncpg

from messaging.store.queries import query

_NOTIFY = query("notify.sql", "notify")


async def connect(
    database_url: str, *, application_name: str, timeout_s: float
) -> asyncpg.Connection:
    """A new connection for LISTEN; named so an operator can find it in
    pg_stat_activity."""
    return await asyncpg.connect(
        database_url,
        timeout=timeout_s,
        server_settings={"application_name": application_name[:63]},
    )


async def notify(conn: asyncpg.Connection, channel: str, payload: str, *, timeout_s: float) -> None:
    await conn.execute(_NOTIFY, channel, payload, timeout=timeout_s)
