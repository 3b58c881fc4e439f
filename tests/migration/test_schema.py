"""The schema the migrations build is the one committed in messaging/schema/schema.sql, and
`make migrate` is idempotent."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import pytest

from messaging.migrate import migrate
from messaging.schema import SCHEMA_FILE
from tests.pg import Server
from tests.schema_dump import comparable, dump
from tests.support.processes import cli


def test_migrations_build_the_committed_schema(pg_server: Server, pg_template: str) -> None:
    built = comparable(dump(pg_server, pg_template))
    committed = comparable(Path(SCHEMA_FILE).read_text(encoding="utf-8"))
    assert built == committed, (
        "messaging/schema/schema.sql is stale: run `make schema` and commit it"
    )


async def test_migrate_on_an_up_to_date_database_changes_nothing(database_url: str) -> None:
    report = await migrate(database_url)
    assert report[0] == "migrations: up to date"
    assert all(line.endswith("up to date") for line in report)


@pytest.mark.slow
async def test_processes_that_migrate_a_new_database_at_once_take_turns(
    pg_server: Server,
) -> None:
    # Every host's `serve --migrate` may start at the same moment, on a database
    # that does not exist yet: one creates it and applies the migrations, the
    # others wait for it and find nothing left to do.
    name = f"msg_migrate_{uuid.uuid4().hex[:8]}"
    url = pg_server.url(name)
    try:
        results = await asyncio.gather(*(asyncio.to_thread(cli, url, "migrate") for _ in range(3)))
        for result in results:
            assert result.returncode == 0, result.stderr
        assert sum("Applying:" in r.stdout for r in results) == 1
        assert sum("migrations: up to date" in r.stdout for r in results) == 2
    finally:
        conn = await asyncpg.connect(pg_server.url("postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
