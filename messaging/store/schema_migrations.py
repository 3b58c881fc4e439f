"""The schema's own bookkeeping tables: schema_migrations (the migrations dbmate
applied) and schema_triggers (the trigger files installed, with their content's
hash).

Every statement is a named query in schema_migrations.sql beside this module.
What the package ships is messaging/schema/; applying it is migrate.py's."""

from __future__ import annotations

import asyncpg

from messaging.schema import migration_versions
from messaging.store.db import Conn
from messaging.store.queries import query

_APPLIED = query("schema_migrations.sql", "applied_migrations")
_INSTALLED = query("schema_migrations.sql", "installed_trigger_hash")
_RECORD = query("schema_migrations.sql", "record_trigger_hash")
_TAKE_TURN = query("schema_migrations.sql", "take_migration_turn")
_END_TURN = query("schema_migrations.sql", "end_migration_turn")


async def take_migration_turn(conn: Conn) -> bool:
    """Whether this session now has the turn to migrate (held until
    end_migration_turn); False while another process migrates. Outside a
    transaction, on a direct connection (a session lock through a transaction
    pooler would stay behind on a server connection)."""
    taken: bool = await conn.fetchval(_TAKE_TURN)
    return taken


async def end_migration_turn(conn: Conn) -> None:
    await conn.fetchval(_END_TURN)


async def applied_migrations(conn: Conn) -> set[str]:
    """Versions dbmate recorded; none on a database it never touched."""
    try:
        return {row["version"] for row in await conn.fetch(_APPLIED)}
    except asyncpg.exceptions.UndefinedTableError:
        return set()


async def pending_migrations(conn: Conn) -> list[str]:
    """Shipped migrations that this database has not applied, oldest first."""
    applied = await applied_migrations(conn)
    return [v for v in migration_versions() if v not in applied]


async def installed_trigger_hash(conn: Conn, file: str) -> str | None:
    digest: str | None = await conn.fetchval(_INSTALLED, file)
    return digest


async def install_trigger(conn: Conn, file: str, sql: str, digest: str) -> None:
    """Run a trigger file and record its hash, in one transaction."""
    async with conn.transaction():
        await conn.execute(sql)
        await conn.execute(_RECORD, file, digest)
