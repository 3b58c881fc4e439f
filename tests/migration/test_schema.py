"""The schema the migrations build is the one committed in messaging/schema/schema.sql, and
`make migrate` is idempotent."""

from __future__ import annotations

from pathlib import Path

from messaging.migrate import migrate
from messaging.schema import SCHEMA_FILE
from tests.pg import Server
from tests.schema_dump import comparable, dump


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
