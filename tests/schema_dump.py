"""messaging/schema/schema.sql: the schema that the migrations and trigger files build, as dbmate
dumps it. `make schema` rewrites the file; tests/migration checks it is current.

Run as `python -m tests.schema_dump PATH`.
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
from pathlib import Path

from messaging.migrate import dbmate, migrate
from tests.pg import ROOT, Server, test_server

# Lines that depend on the server's or pg_dump's version, not on the schema.
_VOLATILE = re.compile(
    r"^(--.*|SET .*|SELECT pg_catalog\.set_config.*|\\(un)?restrict .*|)$"
    # Column options some servers add by themselves (seen on a Debian PostgreSQL 15).
    r"|^ALTER TABLE ONLY \S+ ALTER COLUMN \S+ SET \(pg_attver=\d+\);$"
)


def dump(server: Server, dbname: str) -> str:
    """The dbmate dump of a database."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "schema.sql"
        dbmate(server.url(dbname), "dump", schema_file=path)
        return path.read_text(encoding="utf-8")


def comparable(schema: str) -> list[str]:
    """The schema's statements without version-dependent lines."""
    return [line for line in schema.splitlines() if not _VOLATILE.match(line)]


def main(target: str) -> None:
    with test_server(None) as server:
        janitor = server.janitor("schema_dump")
        janitor.drop()
        with janitor:
            asyncio.run(migrate(server.url("schema_dump")))
            Path(target).write_text(dump(server, "schema_dump"), encoding="utf-8")
    print(f"wrote {Path(target).resolve().relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1])
