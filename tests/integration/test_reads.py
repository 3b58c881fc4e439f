"""Reads.run's fallback without a real replica: the read URL names the test's own
database through a proxy (a server not in recovery is as fresh as the primary);
the proxy then stops forwarding on the connections open so far, as a hung
replica does. Every list read still answers, from the primary, within the
replica read's time limit; and a lock not granted in time is an outage for now
(DatabaseUnavailable, retried by the worker), not an unforeseen error."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
import pytest

from messaging.app import init_app
from messaging.config import Settings
from messaging.errors import DatabaseUnavailable
from messaging.http.keys import METRICS, READS
from messaging.store.db import is_transient, transaction
from messaging.store.replica import REPLICA_READ_TIMEOUT_S
from tests.pg import Server
from tests.support import metrics
from tests.support.proxy import FreezableProxy
from tests.support.waiting import wait_until


@pytest.mark.timeout(60)
async def test_a_hung_replica_costs_a_read_its_time_limit_then_the_primary_answers(
    aiohttp_client: Any, pg_server: Server, database_url: str, settings: Settings
) -> None:
    proxy = FreezableProxy(pg_server.host, pg_server.port)
    port = await proxy.start()
    dbname = database_url.split("?")[0].rsplit("/", 1)[1]
    replica_url = f"postgresql://{pg_server.user}@127.0.0.1:{port}/{dbname}"
    try:
        app = init_app(settings.replace(read_database_url=replica_url))
        client = await aiohttp_client(app)
        standby = app[READS].replica
        assert standby is not None
        await wait_until(lambda: standby.lag_s() is not None, within=10, interval=0.02)
        response = await client.get("/api/conversations")
        assert response.status == 200
        assert metrics.read(app[METRICS]).total("messaging_reads_total", database="replica") == 1

        proxy.freeze()
        for _ in range(3):
            started = time.monotonic()
            response = await client.get("/api/conversations")
            assert response.status == 200, await response.text()
            assert time.monotonic() - started < REPLICA_READ_TIMEOUT_S + 2
        served = metrics.read(app[METRICS])
        assert served.total("messaging_reads_total", database="primary") == 3
        assert (
            served.total("messaging_replica_fallbacks_total", reason="failed")
            + served.total("messaging_replica_fallbacks_total", reason="down")
            == 3
        )
        # The lag check survives the hang: new connections pass the proxy, and
        # the replica is read from again.
        await wait_until(lambda: standby.lag_s() is not None, within=20, interval=0.05)
        response = await client.get("/api/conversations")
        assert response.status == 200
        assert metrics.read(app[METRICS]).total("messaging_reads_total", database="replica") == 2
    finally:
        await proxy.close()


async def test_a_lock_not_granted_in_time_is_an_outage_for_now(
    pool: asyncpg.Pool, db: asyncpg.Connection
) -> None:
    await db.execute(
        "CREATE TABLE lock_probe (id int PRIMARY KEY); INSERT INTO lock_probe VALUES (1)"
    )
    holder = db.transaction()
    await holder.start()
    await db.execute("SELECT * FROM lock_probe FOR UPDATE")
    try:
        with pytest.raises(DatabaseUnavailable) as caught:
            async with transaction(pool) as conn:
                await conn.execute("SET LOCAL lock_timeout = '50ms'")
                await conn.execute("SELECT * FROM lock_probe FOR UPDATE")
        assert isinstance(caught.value.__cause__, asyncpg.exceptions.LockNotAvailableError)
        assert is_transient(caught.value)
    finally:
        await holder.rollback()
    await asyncio.sleep(0)
