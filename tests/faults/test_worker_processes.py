"""Real `messaging worker` and `messaging serve` processes against a real
PostgreSQL: concurrency, crashes, a lost LISTEN connection, clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from tests.pg import ROOT
from tests.support.arrange import insert_sms
from tests.support.checks import assert_consistent, listener_backends, status_counts
from tests.support.payloads import SMS_WEBHOOK
from tests.support.processes import WorkerProcess, terminate_quietly
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

SLOW_BATCHES = """
CREATE FUNCTION test_slow() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN PERFORM pg_sleep($SLEEP$); RETURN NULL; END $$;
CREATE TRIGGER test_slow AFTER INSERT ON messages FOR EACH STATEMENT EXECUTE FUNCTION test_slow();
"""


async def slow_down_batches(db: asyncpg.Connection, seconds: float) -> None:
    """Make every batch's transaction take at least `seconds` (a test-only
    trigger), so that a batch can be caught in flight."""
    await db.execute(SLOW_BATCHES.replace("$SLEEP$", str(seconds)))


async def processing_by(db: asyncpg.Connection, pid: int) -> int:
    return int(
        await db.fetchval(
            "SELECT count(*) FROM inbound_events WHERE status = 'processing' AND processor_id LIKE $1",
            f"%:{pid}:%",
        )
    )


async def all_processed(db: asyncpg.Connection, total: int) -> bool:
    return bool(
        await db.fetchval(
            "SELECT count(*) = $1 FROM inbound_events WHERE status = 'processed'", total
        )
    )


@contextlib.contextmanager
def workers(
    database_url: str, log_dir: Path, count: int, **env: str
) -> Iterator[list[WorkerProcess]]:
    started = [WorkerProcess(database_url, log_dir, f"worker-{i}", **env) for i in range(count)]
    try:
        yield started
    except BaseException:
        for w in started:
            print(f"--- {w.log_path.name}\n{w.output()[-3000:]}")
        raise
    finally:
        terminate_quietly(started)


@pytest.mark.timeout(120)
async def test_four_workers_process_ten_thousand_events_exactly_once(
    database_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    total = 10_000
    with workers(database_url, tmp_path, 4, MESSAGING_BATCH_SIZE="250") as procs:
        await wait_until(lambda: _listening(db, 4), within=20)
        # Inserted while the workers run, in many notifying statements, into 40
        # conversations that every worker writes to.
        for chunk in range(total // 250):
            await insert_sms(db, 250, prefix=f"c{chunk}-", pairs=40)
        await wait_until(lambda: all_processed(db, total), within=60, interval=0.1)
        assert [p.terminate() for p in procs] == [0, 0, 0, 0]
    assert await status_counts(db) == {"processed": total}
    # Each event claimed once (attempt 1), one message each, counts right.
    assert await db.fetchval("SELECT max(attempt_count) FROM inbound_events") == 1
    assert await db.fetchval("SELECT count(*) FROM messages") == total
    assert await db.fetchval("SELECT sum(message_count) FROM conversations") == total
    assert await db.fetchval("SELECT count(*) FROM conversations") == 40
    await assert_consistent(db)
    shares = await db.fetch("SELECT processor_id, count(*) FROM inbound_events GROUP BY 1")
    assert len(shares) >= 2, "the work was not shared"
    for p in procs:
        assert "Traceback" not in p.output()


@pytest.mark.timeout(120)
async def test_workers_killed_mid_batch_lose_nothing_and_duplicate_nothing(
    database_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    total = 5_000
    await slow_down_batches(db, 0.1)
    env = {
        "MESSAGING_BATCH_SIZE": "100",
        "MESSAGING_CLAIM_TIMEOUT_SECS": "1",
        "MESSAGING_SWEEP_INTERVAL_MS": "200",
        "MESSAGING_BACKOFF_BASE_MS": "100",
    }
    await insert_sms(db, total, pairs=25)
    with workers(database_url, tmp_path, 2, **env) as procs:
        kills_mid_batch = 0
        # A kill can land just after a batch committed (the machine is shared and
        # slow at times): kill until three kills have left claims behind.
        for round_ in range(8):
            if kills_mid_batch == 3:
                break
            victim = procs[round_ % len(procs)]
            await wait_until(lambda v=victim: processing_by(db, v.pid), within=20, interval=0.005)  # type: ignore[misc]
            victim.kill()
            # Its claims are left behind: the batch died mid-transaction.
            kills_mid_batch += await processing_by(db, victim.pid) > 0
            procs[round_ % len(procs)] = WorkerProcess(
                database_url, tmp_path, f"restart-{round_}", **env
            )
            procs.append(victim)  # for the log dump on failure
        assert kills_mid_batch == 3
        await wait_until(lambda: all_processed(db, total), within=60, interval=0.1)
    assert await status_counts(db) == {"processed": total}  # 0 lost, 0 dead letters
    assert await db.fetchval("SELECT count(*) FROM messages") == total  # 0 duplicates
    await assert_consistent(db)
    returned = await db.fetchval(
        "SELECT count(*) FROM inbound_events WHERE attempt_count > 1 AND last_error LIKE '%timed out%'"
    )
    assert returned > 0  # the stale claims were returned by the sweep and retried


@pytest.mark.timeout(120)
async def test_a_worker_whose_listen_connection_is_killed_reconnects(
    database_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    # With a 60 s sweep, only notifications and the claim after reconnecting
    # can find the events in time.
    with workers(database_url, tmp_path, 1, MESSAGING_SWEEP_INTERVAL_MS="60000") as [proc]:
        await wait_until(lambda: listener_backends(db, proc.pid), within=20)
        total = 0
        for round_ in range(3):
            for _ in range(10):
                total += len(await insert_sms(db, 100, prefix=f"r{round_}-{total}-"))
            [backend] = await listener_backends(db, proc.pid)
            await db.execute("SELECT pg_terminate_backend($1)", backend)
            total += len(await insert_sms(db, 100, prefix=f"gap{round_}-"))
            await wait_until(lambda old=backend: _replaced(db, proc.pid, old), within=10)  # type: ignore[misc]
        await wait_until(lambda: all_processed(db, total), within=10, interval=0.05)
        await wait_until(lambda: proc.output().count("listener reconnected") == 3, within=5)
        assert proc.terminate() == 0
    assert await status_counts(db) == {"processed": total}
    await assert_consistent(db)


@pytest.mark.timeout(60)
async def test_sigterm_finishes_the_batch_and_leaves_no_claim(
    database_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    await slow_down_batches(db, 0.3)
    await insert_sms(db, 1000)
    with workers(database_url, tmp_path, 1, MESSAGING_BATCH_SIZE="100") as [proc]:
        await wait_until(lambda: processing_by(db, proc.pid), within=20, interval=0.005)
        assert proc.terminate(timeout=10) == 0
        assert "worker stopped" in proc.output()
    counts = await status_counts(db)
    assert "processing" not in counts
    assert (
        counts["processed"] % 100 == 0 and counts["processed"] >= 100
    )  # the batch in hand finished
    assert counts["received"] == 1000 - counts["processed"]
    await assert_consistent(db)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("worker", [True, False], ids=["serve", "serve --no-worker"])
async def test_serve_runs_the_worker_unless_told_not_to(
    database_url: str, db: asyncpg.Connection, tmp_path: Path, worker: bool
) -> None:
    port = _free_port()
    args = ["serve"] if worker else ["serve", "--no-worker"]
    log = (tmp_path / "serve.log").open("wb")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "messaging",
        *args,
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url, "PORT": str(port), "LOG_FORMAT": "text"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            await wait_until(lambda: _ready(http), within=20, interval=0.1)
            # Ready means started up: a worker, if any, was started before.
            started = "worker started" in (tmp_path / "serve.log").read_text(errors="replace")
            assert started == worker
            for i in range(20):
                body = {**SMS_WEBHOOK, "messaging_provider_id": f"s-{i}", "body": "hi"}
                async with http.post("/api/webhooks/sms", json=body) as response:
                    assert response.status == 202
            if worker:
                try:
                    await wait_until(lambda: all_processed(db, 20), within=15)
                except AssertionError:
                    log.flush()
                    print((tmp_path / "serve.log").read_text(errors="replace")[-5000:])
                    print(await status_counts(db))
                    raise
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log.close()
    assert await status_counts(db) == ({"processed": 20} if worker else {"received": 20})


async def _listening(db: asyncpg.Connection, workers: int) -> bool:
    return len(await listener_backends(db)) == workers


async def _replaced(db: asyncpg.Connection, pid: int, old: int) -> bool:
    backends = await listener_backends(db, pid)
    return bool(backends) and old not in backends


async def _ready(http: aiohttp.ClientSession) -> bool:
    try:
        async with http.get("/readyz") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


def _free_port() -> int:
    """A free port among those this project may use by hand (18100-18199)."""
    for port in range(18150, 18200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 18150-18199")
