"""A real streaming replica (pg_basebackup of a scratch primary) answers the
conversation list while it is fresh; a send is seen at once by the read of its
conversation, which stays on the primary; a replica whose replay is paused
past MESSAGING_READ_MAX_LAG_MS, and then one that is stopped, send the list to
the primary without failing a request; the metrics say where each read went."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from messaging.app import init_app
from messaging.config import Settings
from messaging.http.keys import METRICS, READS
from messaging.migrate import migrate
from messaging.store.db import direct
from tests.support import metrics
from tests.support.payloads import SMS_SEND
from tests.support.servers import primary_and_replica
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

MAX_LAG_MS = 500


async def test_the_list_reads_from_a_fresh_replica_and_falls_back_to_the_primary(
    aiohttp_client: Any,
) -> None:
    with primary_and_replica() as (primary, replica):
        await migrate(primary.url("messaging"))
        app = init_app(
            Settings(
                database_url=primary.url("messaging"),
                read_database_url=replica.url("messaging"),
                read_max_lag_ms=MAX_LAG_MS,
                api_auth="none",
            )
        )
        client = await aiohttp_client(app)
        standby = app[READS].replica
        assert standby is not None

        def served() -> metrics.Samples:
            return metrics.read(app[METRICS])

        async def list_ids() -> list[int]:
            response = await client.get("/api/conversations")
            assert response.status == 200, await response.text()
            return [c["id"] for c in (await response.json())["items"]]

        await wait_until(lambda: standby.lag_s() is not None, within=20, interval=0.05)

        # A send, then at once the read of its conversation: the primary's.
        response = await client.post("/api/messages/sms", json=SMS_SEND)
        assert response.status == 202, await response.text()
        sent = await response.json()
        response = await client.get(f"/api/conversations/{sent['conversation_id']}/messages")
        assert [m["id"] for m in (await response.json())["items"]] == [sent["id"]]

        # The list, from the replica: the conversation appears there within the lag.
        async def listed() -> bool:
            return sent["conversation_id"] in await list_ids()

        await wait_until(listed, within=10, interval=0.02)
        assert served().total("messaging_reads_total", database="replica") >= 1
        assert served().total("messaging_reads_total", database="primary") == 0

        # Replay paused: the replica falls behind as the primary writes on, and
        # past the allowed lag the list is read from the primary.
        async with direct(replica.url("messaging")) as conn:
            await conn.execute("SELECT pg_wal_replay_pause()")
            response = await client.post("/api/messages/sms", json={**SMS_SEND, "to": "+15550001"})
            assert response.status == 202
            newer = (await response.json())["conversation_id"]
            await wait_until(
                lambda: (standby.lag_s() or 0) > MAX_LAG_MS / 1000, within=10, interval=0.05
            )
            assert newer in await list_ids()
            assert served().total("messaging_replica_fallbacks_total", reason="lagging") >= 1
            assert served().total("messaging_reads_total", database="primary") >= 1
            await conn.execute("SELECT pg_wal_replay_resume()")
        await wait_until(
            lambda: (standby.lag_s() or 1) <= MAX_LAG_MS / 1000, within=10, interval=0.05
        )
        from_replica = served().total("messaging_reads_total", database="replica")
        assert newer in await list_ids()
        assert served().total("messaging_reads_total", database="replica") == from_replica + 1

        # Stopped: every read still answers, from the primary.
        await asyncio.to_thread(replica.stop, "immediate")
        for _ in range(20):
            assert newer in await list_ids()
        fallbacks = served()
        assert (
            fallbacks.total("messaging_replica_fallbacks_total", reason="failed")
            + (fallbacks.total("messaging_replica_fallbacks_total", reason="down"))
            >= 20
        )
        assert served().value("messaging_replica_up") == 0
        readiness = await (await client.get("/readyz")).json()
        assert readiness["status"] == "ready", readiness
        assert readiness["checks"]["replica"]["up"] is False
