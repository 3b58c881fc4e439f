"""The schema's own bookkeeping: the migrations dbmate applied, the trigger files
installed (with their content's hash), and whether the database answers.

Every statement is a named query in schema.sql beside this module. What the
package ships (the migration and trigger files) is messaging/db/; applying it is
migrate.py's."""

from __future__ import annotations

import asyncpg

from messaging.store.db import Conn, connection
from messaging.store.queries import query

_APPLIED = query("schema.sql", "applied_migrations")
_INSTALLED = query("schema.sql", "installed_trigger_hash")
_RECORD = query("schema.sql", "record_trigger_hash")
_PING = query("schema.sql", "ping")


async def ping(pool: asyncpg.Pool) -> None:
    """Raise DatabaseUnavailable unless the database answers."""
    async with connection(pool) as conn:
        await conn.fetchval(_PING)


async def applied_migrations(conn: Conn) -> set[str]:
    """Versions dbmate recorded; none on a database it never touched."""
    try:
        return {row["version"] for row in await conn.fetch(_APPLIED)}
    except asyncpg.exceptions.UndefinedTableError:
        return set()


async def applied_migrations_of(pool: asyncpg.Pool) -> set[str]:
    async with connection(pool) as conn:
        return await applied_migrations(conn)


async def installed_trigger_hash(conn: Conn, file: str) -> str | None:
    digest: str | None = await conn.fetchval(_INSTALLED, file)
    return digest


async def install_trigger(conn: Conn, file: str, sql: str, digest: str) -> None:
    """Run a trigger file and record its hash, in one transaction."""
    async with conn.transaction():
        await conn.execute(sql)
        await conn.execute(_RECORD, file, digest)
