"""The connection pools and the one place where driver errors become our own.

A URL may reach PostgreSQL directly or through a connection pooler such as
PgBouncer in transaction mode, which hands each transaction whichever server
connection is free. There a prepared statement made in one transaction is gone
(or someone else's) in the next, so asyncpg's statement cache, which prepares
each statement once per connection and reuses it by name, breaks: "prepared
statement __asyncpg_stmt_1__ does not exist", or a bind to another client's
statement. Nothing else here needs a session: no SET, no session advisory lock,
no temporary table; the LISTEN connection is made elsewhere (store/listen.py).

So the first connection to a URL asks whether a pooler stands in between
(behind_pooler) and the pool remembers: behind one, statements are not cached
(asyncpg then prepares each one unnamed, in the same Parse..Sync exchange as its
execution, which a pooler keeps on one server connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, cast

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from messaging.errors import DatabaseFailed, DatabaseRejected, DatabaseUnavailable
from messaging.store.queries import query

log = logging.getLogger(__name__)

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


# Errors that say nothing about the data either, but about its moment: a
# deadlock, a serialization failure, a lock not granted in time. The same work
# may succeed if it is tried again, so they count as the database being
# unavailable for now (the worker retries them without charging an attempt).
_RETRY_LATER: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.TransactionRollbackError,
    asyncpg.exceptions.LockNotAvailableError,
)


def is_transient(exc: BaseException) -> bool:
    """True for errors that are not the data's fault: outages, deadlocks, timeouts."""
    return isinstance(
        exc,
        (
            *_UNAVAILABLE,
            *_RETRY_LATER,
            DatabaseUnavailable,
        ),
    )


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn driver exceptions into DatabaseUnavailable / DatabaseRejected, and
    every other database error into DatabaseFailed: one we did not foresee (a
    pooler that drops prepared statements, a missing table, a permission), which
    the API answers 503, never 500."""
    try:
        yield
    except (DatabaseUnavailable, DatabaseRejected, DatabaseFailed):
        raise
    except (*_UNAVAILABLE, *_RETRY_LATER) as exc:
        raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc
    except (
        asyncpg.exceptions.DataError,
        asyncpg.exceptions.IntegrityConstraintViolationError,
    ) as exc:
        raise DatabaseRejected(f"{type(exc).__name__}: {exc}") from exc
    except asyncpg.PostgresError as exc:
        raise DatabaseFailed(f"{type(exc).__name__}: {exc}") from exc


async def create_pool(
    database_url: str, *, size: int, timeout_s: float = ACQUIRE_TIMEOUT_S
) -> asyncpg.Pool:
    """A pool that connects lazily, so that the service starts (and answers 503)
    while the database is down, and recovers by itself when it comes back; fit
    for a transaction pooler in between when there is one (_Connector)."""
    pool = await asyncpg.create_pool(
        database_url,
        min_size=0,
        max_size=size,
        command_timeout=COMMAND_TIMEOUT_S,
        timeout=timeout_s,
        max_inactive_connection_lifetime=300,
        server_settings={"application_name": "messaging"},
        reset=_keep_session,
        # Typed by asyncpg's stubs as connect()'s every keyword; it passes them on.
        connect=cast(Any, _Connector().connect),
    )
    assert pool is not None
    return pool


_BACKEND_PID = query("db.sql", "backend_pid")


async def behind_pooler(conn: asyncpg.Connection) -> bool:
    """Whether a connection pooler stands between this connection and PostgreSQL.

    PostgreSQL tells a new connection its backend's pid (with the key that cancels
    its queries); a pooler cannot hand out a server connection's key, so it makes
    one up. The pid the connection was given and the pid of the backend that
    answers a query then differ. (Run on a connection that caches no statement: a
    named one would stay behind on the pooler's server connection.)"""
    answering: int = await conn.fetchval(_BACKEND_PID)
    return answering != conn.get_server_pid()


class _Connector:
    """The connect function of one pool: the first connection finds out whether
    the URL goes through a pooler, and every connection of the pool is then made
    to suit (statements cached directly, not behind a pooler)."""

    def __init__(self) -> None:
        self.pooled: bool | None = None
        # Held while the first connection finds out, so that the connections
        # opened meanwhile wait for its answer instead of each asking.
        self._asking = asyncio.Lock()

    async def connect(self, dsn: str, **kwargs: Any) -> asyncpg.Connection:
        if self.pooled is None:
            async with self._asking:
                if self.pooled is None:
                    return await self._first(dsn, **kwargs)
        return await self._connect(dsn, **kwargs)

    async def _first(self, dsn: str, **kwargs: Any) -> asyncpg.Connection:
        conn: asyncpg.Connection = await asyncpg.connect(dsn, statement_cache_size=0, **kwargs)
        try:
            self.pooled = await behind_pooler(conn)
        except BaseException:
            conn.terminate()
            raise
        if self.pooled:
            log.info(
                "the database is reached through a connection pooler: statements are "
                "not cached (a transaction pooler keeps none across transactions)",
                extra={"action": "db_pooler_detected"},
            )
            return conn
        await conn.close()
        return await self._connect(dsn, **kwargs)

    async def _connect(self, dsn: str, **kwargs: Any) -> asyncpg.Connection:
        # 100: asyncpg's own default.
        cached: asyncpg.Connection = await asyncpg.connect(
            dsn, statement_cache_size=0 if self.pooled else 100, **kwargs
        )
        return cached


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
    succeeded = False
    try:
        with translate_errors():
            yield conn
        succeeded = True
    except (DatabaseUnavailable, asyncio.CancelledError):
        # A statement may still be running on a server that does not answer
        # (timed out, or its caller gave up): drop the connection rather than
        # wait, on the way out, for the server to acknowledge a cancel. (One
        # whose connection was lost is detached from the pool already.)
        with contextlib.suppress(asyncpg.InterfaceError):
            conn.terminate()
        raise
    finally:
        # Releasing a connection whose statement timed out waits for the server
        # to acknowledge the cancel, and fails if it does not (a hung server):
        # the same outage. After a failed block, the block's error is the one
        # that counts; asyncpg has dropped the connection either way.
        try:
            await pool.release(conn)
        except Exception as exc:
            if succeeded:
                raise DatabaseUnavailable(f"{type(exc).__name__}: {exc}") from exc
            log.debug("release after a failure failed too", exc_info=exc)


@asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[Conn]:
    """A pooled connection in a transaction that commits when the block ends
    (errors translated as by connection())."""
    async with connection(pool) as conn, conn.transaction():
        yield conn


@asynccontextmanager
async def direct(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of its own, outside any pool (the CLI's reports, migrations),
    with errors translated. Its statements are not cached: each runs about once,
    and so the URL may go through a transaction pooler."""
    with translate_errors():
        conn = await asyncpg.connect(database_url, statement_cache_size=0)
    try:
        with translate_errors():
            yield conn
    finally:
        await conn.close()


_PING = query("db.sql", "ping")


async def ping(conn: Conn) -> None:
    """Raise DatabaseUnavailable (within connection()) unless the database answers."""
    await conn.fetchval(_PING)
