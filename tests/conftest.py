"""The fixtures every test may take: the PostgreSQL server and a fresh database
per test, a connection and a pool to it, the app's test client, workers, and a
database outage. What they are built from lives in tests/pg.py and
tests/support/."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from typing import Any

import asyncpg
import pytest

from messaging.app import init_app
from messaging.config import Settings
from messaging.metrics import Metrics
from messaging.providers.client import open_providers
from messaging.store.db import create_pool
from messaging.worker.runner import Worker
from tests.pg import Server, fresh_database, template_database, test_server
from tests.support.aliases import Client
from tests.support.outage import DatabaseOutage


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    with test_server(os.environ.get("TEST_DATABASE_URL")) as server:
        yield server


@pytest.fixture(scope="session")
def pg_template(pg_server: Server) -> Iterator[str]:
    with template_database(pg_server) as name:
        yield name


@pytest.fixture
def database_url(pg_server: Server, pg_template: str) -> Iterator[str]:
    """A fresh, migrated database for this test."""
    with fresh_database(pg_server, pg_template) as url:
        yield url


@pytest.fixture
def settings(database_url: str) -> Settings:
    """What `make run` serves on the embedded PostgreSQL: the API open and the mock
    providers mounted, whichever server the tests run on (a test that wants API
    keys asks for api_auth="keys")."""
    return Settings(
        database_url=database_url, log_format="text", api_auth="none", mock_providers=True
    )


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection to the test's database, for arranging and asserting."""
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test's database, for calling the store's functions directly."""
    pool = await create_pool(database_url, size=4)
    yield pool
    await pool.close()


@pytest.fixture
async def client(aiohttp_client: object, settings: Settings) -> Client:
    return await aiohttp_client(init_app(settings))  # type: ignore[operator,no-any-return]


@pytest.fixture
def database_outage(pg_server: Server, database_url: str) -> DatabaseOutage:
    """`async with database_outage:` the test's database refuses connections and
    its open ones are killed; it is back after the block."""
    return DatabaseOutage(pg_server, database_url)


@pytest.fixture
async def make_worker(settings: Settings) -> AsyncIterator[Callable[..., Awaitable[Worker]]]:
    """Build workers on the test's database (each with its own pool, provider
    clients and metrics, or the Metrics passed in, for the test to read);
    started ones are stopped at the end of the test."""
    made: list[tuple[Worker, bool]] = []
    async with AsyncExitStack() as resources:

        async def make(
            start: bool = True,
            listener: dict[str, float] | None = None,
            metrics: Metrics | None = None,
            **changes: Any,
        ) -> Worker:
            worker_settings = settings.replace(**changes)
            assert worker_settings.database_url is not None
            metrics = metrics or Metrics()
            pool = await create_pool(worker_settings.database_url, size=4)
            resources.push_async_callback(pool.close)
            providers = await resources.enter_async_context(
                open_providers(worker_settings, metrics)
            )
            worker = Worker(worker_settings, pool, metrics, providers, **(listener or {}))
            made.append((worker, start))
            if start:
                await worker.start()
            return worker

        yield make
        for worker, started in made:
            if started:
                await worker.stop()
