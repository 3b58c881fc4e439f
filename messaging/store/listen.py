"""The LISTEN connection's side of the database: a dedicated connection outside
the pool (a pooled one would be reset, and its LISTENs dropped, on release) and
the notification the listener sends itself to prove the connection alive."""

from __future__ import annotations

import asyncpg

from messaging.store.db import behind_pooler
from messaging.store.queries import query

_NOTIFY = query("notify.sql", "notify")


class ListenThroughPooler(Exception):
    """The LISTEN URL reaches PostgreSQL through a connection pooler."""

    def __str__(self) -> str:
        return (
            "the LISTEN connection goes through a connection pooler: a LISTEN outlives the"
            " transaction that ran it, and a transaction pooler hands the server connection"
            " to other clients afterwards, so notifications would be lost or reach them"
            " instead; set MESSAGING_LISTEN_DATABASE_URL to the primary's own address"
        )


async def connect(
    database_url: str, *, application_name: str, timeout_s: float
) -> asyncpg.Connection:
    """A new connection for LISTEN, named so an operator can find it in
    pg_stat_activity; ListenThroughPooler if it is not a session of its own."""
    conn = await asyncpg.connect(
        database_url,
        timeout=timeout_s,
        # Every statement bounded, the pooler probe included: a server that hangs
        # after the handshake must not leave the listener connecting for good.
        command_timeout=timeout_s,
        statement_cache_size=0,
        server_settings={"application_name": application_name[:63]},
    )
    try:
        pooled = await behind_pooler(conn)
    except BaseException:
        conn.terminate()
        raise
    if pooled:
        await conn.close(timeout=timeout_s)
        raise ListenThroughPooler()
    return conn


async def notify(conn: asyncpg.Connection, channel: str, payload: str, *, timeout_s: float) -> None:
    await conn.execute(_NOTIFY, channel, payload, timeout=timeout_s)
