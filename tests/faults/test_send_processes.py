"""Real `messaging worker` processes delivering sends through a mock provider
over real HTTP, under provider faults and a worker killed mid-send: every send
is sent, and the provider counts one delivery per message."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import asyncpg
import pytest

from messaging.app import init_mock_app
from messaging.config import Settings
from tests.support.aliases import ServerFactory
from tests.support.arrange import insert_sends
from tests.support.processes import WorkerProcess, terminate_quietly
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


async def sending_by(db: asyncpg.Connection, pid: int) -> int:
    return int(
        await db.fetchval(
            "SELECT count(*) FROM messages WHERE status = 'sending' AND processor_id LIKE $1",
            f"%:{pid}:%",
        )
    )


async def statuses(db: asyncpg.Connection) -> dict[str, int]:
    rows = await db.fetch("SELECT status, count(*) AS n FROM messages GROUP BY status")
    return {r["status"]: r["n"] for r in rows}


@pytest.mark.timeout(90)
async def test_workers_deliver_each_send_once_through_faults_and_a_kill(
    aiohttp_server: ServerFactory, database_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    mock = await aiohttp_server(init_mock_app(Settings(mock_seed=5)))
    base = str(mock.make_url("/mock")).rstrip("/")
    async with aiohttp.ClientSession() as session:
        async with session.patch(
            f"{base}/sms/config",
            json={"rates": {"429": 0.1, "500": 0.2, "hang": 0.05}, "retry_after_secs": 0,
                  "hang_secs": 1},
        ) as response:  # fmt: skip
            assert response.status == 200
        total = 300
        ids = await insert_sends(db, total)
        env = {
            "MESSAGING_SMS_PROVIDER_URL": f"{base}/sms",
            "MESSAGING_EMAIL_PROVIDER_URL": f"{base}/email",
            "MESSAGING_PROVIDER_TIMEOUT_MS": "300",
            "MESSAGING_CLAIM_TIMEOUT_SECS": "1",
            "MESSAGING_SWEEP_INTERVAL_MS": "200",
            "MESSAGING_BACKOFF_BASE_MS": "20",
            "MESSAGING_BACKOFF_CAP_MS": "200",
            "MESSAGING_MAX_RETRIES": "50",
            "MESSAGING_SEND_CONCURRENCY": "8",
        }
        procs = [WorkerProcess(database_url, tmp_path, f"worker-{i}", **env) for i in range(2)]
        try:
            victim = procs[0]
            await wait_until(lambda: sending_by(db, victim.pid), within=20, interval=0.005)
            victim.kill()
            # Its claims stay in sending until the sweep of the survivor returns them.
            assert await sending_by(db, victim.pid) > 0
            await wait_until(
                lambda: db.fetchval(
                    "SELECT count(*) = $1 FROM messages WHERE status = 'sent'", total
                ),
                within=40,
                interval=0.1,
            )
            assert procs[1].terminate() == 0
        except BaseException:
            for p in procs:
                print(f"--- {p.log_path.name}\n{p.output()[-3000:]}")
            raise
        finally:
            terminate_quietly(procs)
        async with session.get(f"{base}/sms/deliveries") as response:
            seen = await response.json()
    assert await statuses(db) == {"sent": total}
    assert seen["accepted"] == total
    assert sorted(d["idempotency_key"] for d in seen["deliveries"]) == sorted(
        f"msg-{i}" for i in ids
    )
    recorded = {
        r["id"]: r["provider_message_id"]
        for r in await db.fetch("SELECT id, provider_message_id FROM messages")
    }
    for delivery in seen["deliveries"]:
        assert recorded[int(delivery["idempotency_key"][4:])] == delivery["provider_message_id"]
    assert "Traceback" not in procs[1].output()
    assert "stale send claim requeued" in procs[1].output()
