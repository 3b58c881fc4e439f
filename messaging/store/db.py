"""The connection pool and the one place where driver errors become our own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from messaging.errors import DatabaseRejected, DatabaseUnavailable
from messaging.store.queries import query

# A connection as the stores see it: direct, or borrowed from the pool.
Conn = asyncpg.Connection | PoolConnectionProxy

# How long a request may wait for a connection or a statement before the
# database counts as unavailable (503) rather than slow.
ACQUIRE_TIMEOUT_S = 5.0
COMMAND_TIMEOUT_S = 10.0

# Errors that say nothing about the data: the database is down, restarting,
# overloaded or unreachable. The same request may succeed later.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    # A pooled connection whose backend was terminated while idle can fail its
    # next query with "cannot switch to state ..." instead of a connection error
    # (MagicStack/asyncpg#1069). It is the same outage.
    asyncpg.exceptions.InternalClientError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.QueryCanceledError,
    asyncpg.exceptions.InvalidCatalogNameError,
    asyncpg.exceptions.ConnectionFailureError,
    asyncpg.exceptions.InsufficientResourcesError,
)


def is_transient(exc: BaseException) -> bool:
    """True for errors that are not the data's fault: outages, deadlocks, timeouts."""
    return isinstance(
        exc,
        (
            *_UNAVAILABLE,
            asyncpg.exceptions.DeadlockDetectedError,
            asyncpg.exceptions.SerializationError,
            asyncpg.exceptions.LockNotAvailableError,
            DatabaseUnavailable,
        ),
    )


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn driver exceptions into DatabaseUnavailable / DatabaseRejected."""
    try:
        yield
    except (DatabaseUnavailable, DatabaseRejected):
        raise
    except _UNAVAILABLE as exc:
        raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc
    except (
        asyncpg.exceptions.DataError,
        asyncpg.exceptions.IntegrityConstraintViolationError,
    ) as exc:
        raise DatabaseRejected(f"{type(exc).__name__}: {exc}") from exc


async def create_pool(database_url: str, *, size: int) -> asyncpg.Pool:
    """A pool that connects lazily, so that the service starts (and answers 503)
    while the database is down, and recovers by itself when it comes back."""
    pool = await asyncpg.create_pool(
        database_url,
        min_size=0,
        max_size=size,
        command_timeout=COMMAND_TIMEOUT_S,
        timeout=ACQUIRE_TIMEOUT_S,
        max_inactive_connection_lifetime=300,
        server_settings={"application_name": "messaging"},
        reset=_keep_session,
    )
    assert pool is not None
    return pool


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Release a connection without asyncpg's default reset query (advisory locks,
    cursors, LISTEN, settings): one round trip per release, on the group-commit
    path once per batch. Pooled connections never change session state here: the
    LISTEN has a connection of its own, and no query SETs or locks beyond its
    transaction. An open transaction is still rolled back by the pool itself."""


@asynccontextmanager
async def connection(pool: asyncpg.Pool) -> AsyncIterator[Conn]:
    """A pooled connection, with errors (of acquiring and of use) translated.

    Whatever stops us from getting a connection (refused, database not accepting
    connections, authentication, timeout) means the database is unavailable.
    """
    try:
        conn = await pool.acquire(timeout=ACQUIRE_TIMEOUT_S)
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc
    try:
        with translate_errors():
            yield conn
    finally:
        await pool.release(conn)


@asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[Conn]:
    """A pooled connection in a transaction that commits when the block ends
    (errors translated as by connection())."""
    async with connection(pool) as conn, conn.transaction():
        yield conn


@asynccontextmanager
async def direct(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of its own, outside any pool (the CLI's reports, migrations),
    with errors translated."""
    with translate_errors():
        conn = await asyncpg.connect(database_url)
    try:
        with translate_errors():
            yield conn
    finally:
        await conn.close()


_PING = query("db.sql", "ping")


async def ping(conn: Conn) -> None:
    """Raise DatabaseUnavailable (within connection()) unless the database answers."""
    await conn.fetchval(_PING)
