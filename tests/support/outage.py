"""A database outage, the way the tests take the database away: new
connections to the test's database refused, and every open one killed.
Other databases on the server (and so the server itself) stay up."""

from __future__ import annotations

from types import TracebackType
from urllib.parse import urlsplit

import asyncpg

from tests.pg import Server


class DatabaseOutage:
    """`async with outage:` the database is unreachable inside the block and
    accepts connections again after it (whatever happened inside)."""

    def __init__(self, server: Server, database_url: str) -> None:
        self._server = server
        self.name = urlsplit(database_url).path.lstrip("/")
        self._admin: asyncpg.Connection | None = None

    async def __aenter__(self) -> DatabaseOutage:
        self._admin = await asyncpg.connect(self._server.url("postgres"))
        await self._admin.execute(f'ALTER DATABASE "{self.name}" WITH allow_connections false')
        await self._admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            self.name,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._admin is not None
        try:
            await self._admin.execute(f'ALTER DATABASE "{self.name}" WITH allow_connections true')
        finally:
            await self._admin.close()
            self._admin = None
