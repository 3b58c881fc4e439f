"""The PostgreSQL server the tests run against, and their databases.

TEST_DATABASE_URL names a server to use; without it, an embedded PostgreSQL is
started in .pgdata/test (git-ignored) and stopped at the end of the run. One
template database, built by the real migrations (dbmate and triggers/), is made
per run; each test gets a fresh copy of it (pytest-postgresql's janitor).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from pytest_postgresql.janitor import DatabaseJanitor

from messaging.migrate import migrate

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Server:
    host: str  # a host name, or a Unix socket folder
    port: int
    user: str
    password: str | None

    def url(self, dbname: str) -> str:
        auth = self.user + (f":{self.password}" if self.password else "")
        if self.host.startswith("/"):
            return f"postgresql://{auth}@/{dbname}?host={self.host}&port={self.port}"
        return f"postgresql://{auth}@{self.host}:{self.port}/{dbname}"

    def janitor(self, dbname: str, **kwargs: object) -> DatabaseJanitor:
        return DatabaseJanitor(
            user=self.user,
            host=self.host,
            port=self.port,
            password=self.password,
            dbname=dbname,
            **kwargs,  # type: ignore[arg-type]
        )


def server_from_url(url: str) -> Server:
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    return Server(
        host=params.get("host") or parts.hostname or "127.0.0.1",
        port=int(params.get("port") or parts.port or 5432),
        user=parts.username or "postgres",
        password=parts.password,
    )


@contextmanager
def test_server(test_database_url: str | None) -> Iterator[Server]:
    if test_database_url:
        yield server_from_url(test_database_url)
        return
    from messaging.embedded import embedded_server

    with embedded_server(ROOT / ".pgdata" / "test", database="postgres") as url:
        yield server_from_url(url)


@contextmanager
def template_database(server: Server) -> Iterator[str]:
    """A migrated template database; yields its name."""
    name = f"msg_tmpl_{uuid.uuid4().hex[:8]}"
    with server.janitor(name, as_template=False):
        asyncio.run(migrate(server.url(name)))
        yield name


@contextmanager
def fresh_database(server: Server, template: str) -> Iterator[str]:
    """A new database copied from the template; yields its URL."""
    name = f"msg_test_{uuid.uuid4().hex[:10]}"
    with server.janitor(name, template_dbname=template):
        yield server.url(name)
