"""Behind a real PgBouncer in transaction mode, with fewer server connections
than processes: two API processes and three workers take 10,000 webhooks and
1,000 sends; every event takes effect once, every send is delivered once, and
nothing fails. The LISTEN connections go straight to PostgreSQL
(MESSAGING_LISTEN_DATABASE_URL); one sent through the pooler is refused at start
and said why."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import unused_port

from messaging.app import init_app, init_mock_app
from messaging.config import Settings
from messaging.store.db import direct
from tests.pg import Server
from tests.support.aliases import ServerFactory
from tests.support.payloads import SMS_SEND, SMS_WEBHOOK
from tests.support.processes import ServeProcess, WorkerProcess, terminate_quietly
from tests.support.servers import PGBOUNCER, PGBOUNCER_MISSING, Bouncer, pgbouncer
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.skipif(PGBOUNCER is None, reason=PGBOUNCER_MISSING)]

WEBHOOKS = 10_000
SENDS = 1_000
# Server connections PgBouncer keeps to the database: fewer than the processes.
POOL = 4


@pytest.fixture
def bouncer(pg_server: Server) -> Iterator[Bouncer]:
    with pgbouncer(pg_server, pool_size=POOL) as running:
        yield running


def through(bouncer: Bouncer, database_url: str, pg_server: Server) -> str:
    """The test database's URL through PgBouncer."""
    return bouncer.url(urlsplit(database_url).path.lstrip("/"), pg_server.user)


async def test_the_app_behind_pgbouncer_caches_no_statement_and_refuses_a_pooled_listen(
    aiohttp_client: Any,
    bouncer: Bouncer,
    pg_server: Server,
    database_url: str,
    db: asyncpg.Connection,
) -> None:
    pooled = through(bouncer, database_url, pg_server)
    # The LISTEN URL left to default: the pooled one.
    client = await aiohttp_client(
        init_app(Settings(database_url=pooled, api_auth="none", mock_providers=True), worker=True)
    )
    for i in range(200):
        webhook = {**SMS_WEBHOOK, "messaging_provider_id": f"pooled-{i}"}
        response = await client.post("/api/webhooks/sms", json=webhook)
        assert response.status == 202, await response.text()
    response = await client.get("/api/conversations")
    assert response.status == 200, await response.text()

    async def refused() -> dict[str, Any] | None:
        answer = await (await client.get("/readyz")).json()
        listener: dict[str, Any] = answer["checks"]["listener"]
        return listener if "connection pooler" in listener.get("error", "") else None

    listener = await wait_until(refused, within=10, interval=0.05)
    assert listener["ok"] is False
    assert "MESSAGING_LISTEN_DATABASE_URL" in listener["error"]
    # No LISTEN, but the sweep still processes everything.
    await wait_until(
        lambda: db.fetchval("SELECT count(*) = 200 FROM inbound_events WHERE status = 'processed'"),
        within=20,
        interval=0.1,
    )
    # The CLI's connection works through the pooler too.
    async with direct(pooled) as conn:
        assert await conn.fetchval("SELECT count(*) FROM messages WHERE direction = $1", "inbound")
    assert "ERROR" not in bouncer.log()


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_two_api_processes_and_three_workers_behind_pgbouncer_take_everything_once(
    aiohttp_server: ServerFactory,
    bouncer: Bouncer,
    pg_server: Server,
    database_url: str,
    db: asyncpg.Connection,
    tmp_path: Path,
) -> None:
    mock = await aiohttp_server(init_mock_app(Settings(mock_seed=3)))
    provider = str(mock.make_url("/mock")).rstrip("/")
    env = {
        "MESSAGING_LISTEN_DATABASE_URL": database_url,
        "MESSAGING_API_AUTH": "none",
        "MESSAGING_SMS_PROVIDER_URL": f"{provider}/sms",
        "MESSAGING_EMAIL_PROVIDER_URL": f"{provider}/email",
        "MESSAGING_HEARTBEAT_SECS": "0.5",
    }
    pooled = through(bouncer, database_url, pg_server)
    apis = [
        ServeProcess(pooled, tmp_path, f"api-{i}", unused_port(), "--no-worker", **env)
        for i in range(2)
    ]
    workers = [WorkerProcess(pooled, tmp_path, f"worker-{i}", **env) for i in range(3)]
    processes = [*apis, *workers]
    try:
        for api in apis:
            await api.ready()
        statuses: Counter[int] = Counter()
        connector = aiohttp.TCPConnector(limit=64)
        async with aiohttp.ClientSession(connector=connector) as http:
            requests = asyncio.Semaphore(48)

            async def post(i: int, path: str, body: dict[str, Any]) -> None:
                async with requests, http.post(apis[i % 2].base_url + path, json=body) as answer:
                    statuses[answer.status] += 1
                    if answer.status != 202:
                        print(answer.status, await answer.text())

            await asyncio.gather(
                *(
                    post(i, "/api/webhooks/sms", {**SMS_WEBHOOK, "messaging_provider_id": f"b-{i}"})
                    for i in range(WEBHOOKS)
                ),
                *(
                    post(i, "/api/messages/sms", {**SMS_SEND, "body": f"send {i}"})
                    for i in range(SENDS)
                ),
            )
            assert statuses == {202: WEBHOOKS + SENDS}

            await wait_until(
                lambda: db.fetchval(
                    """SELECT (SELECT count(*) FROM inbound_events WHERE status = 'processed') = $1
                          AND (SELECT count(*) FROM messages WHERE status = 'sent') = $2""",
                    WEBHOOKS,
                    SENDS,
                ),
                within=120,
                interval=0.2,
            )

            # Every process in the operator's view, listening.
            async def everyone() -> list[dict[str, Any]] | None:
                async with http.get(f"{apis[0].base_url}/api/admin/queues") as answer:
                    found: list[dict[str, Any]] = (await answer.json())["processes"]
                pids = {p.pid for p in processes}
                ours = [p for p in found if p["pid"] in pids]
                ready = len(ours) == len(pids) and all(
                    p["listener_state"] == "listening" and p["fresh"] for p in ours
                )
                return ours if ready else None

            listed = await wait_until(everyone, within=10, interval=0.1)
            assert Counter(p["kind"] for p in listed) == {"api": 2, "worker": 3}

            async with http.get(f"{provider}/sms/deliveries") as answer:
                seen = await answer.json()
        for process in processes:
            assert process.terminate() == 0
    except BaseException:
        for p in processes:
            print(f"--- {p.log_path.name}\n{p.output()[-3000:]}")
        print(f"--- pgbouncer\n{bouncer.log()[-3000:]}")
        raise
    finally:
        terminate_quietly(processes)

    # Each event made one message; the conversation counts them all.
    assert await db.fetchval(
        "SELECT count(DISTINCT inbound_event_id) = $1 AND count(*) = $1 FROM messages"
        " WHERE direction = 'inbound'",
        WEBHOOKS,
    )
    assert await db.fetchval("SELECT sum(message_count) FROM conversations") == WEBHOOKS + SENDS
    # Each send reached the provider once: one request under its key.
    sent = {r["id"] for r in await db.fetch("SELECT id FROM messages WHERE direction = 'outbound'")}
    assert seen["accepted"] == SENDS
    assert {d["idempotency_key"] for d in seen["deliveries"]} == {f"msg-{i}" for i in sent}
    assert all(d["requests"] == 1 for d in seen["deliveries"])
    # Nothing failed on the way: no error in any log, PgBouncer's included.
    for process in processes:
        output = process.output()
        assert " ERROR " not in output and "Traceback" not in output, output[-3000:]
    assert "ERROR" not in bouncer.log(), bouncer.log()[-3000:]
