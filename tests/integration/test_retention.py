"""Retention against a real PostgreSQL: what the worker's sweep and `messaging
prune` delete, what they keep, and that exactly-once outlives the events."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import asyncpg

from messaging.metrics import Metrics
from messaging.store import retention_state
from messaging.store.db import create_pool
from messaging.worker.retention import Pruner, RetentionPolicy
from tests.support.aliases import Client, MakeWorker
from tests.support.arrange import insert_sms
from tests.support.checks import status_counts
from tests.support.metrics import read
from tests.support.payloads import SMS_SEND, SMS_WEBHOOK
from tests.support.processes import cli
from tests.support.waiting import wait_until

POLICY = RetentionPolicy(
    events_s=7 * 86_400, idempotency_keys_s=86_400, stream_s=86_400, batch_rows=7, pause_s=0
)


async def age(db: asyncpg.Connection, table: str, column: str, ids: list[int], days: int) -> None:
    key = "key" if table == "idempotency_keys" else "id"
    await db.execute(
        f"UPDATE {table} SET {column} = {column} - make_interval(days => $2) WHERE {key} = ANY($1)",
        ids,
        days,
    )


async def test_the_sweep_prunes_old_processed_events_and_keeps_their_messages(
    make_worker: MakeWorker, db: asyncpg.Connection
) -> None:
    metrics = Metrics()
    worker = await make_worker(start=False, metrics=metrics, prune_batch_rows=7, prune_pause_ms=0)
    ids = await insert_sms(db, 30, pairs=3)
    assert await worker.inbound.drain() == 30
    await age(db, "inbound_events", "received_at", ids[:20], days=8)
    # Old too, but an operator's to replay or purge, and a retry still due.
    kept = await insert_sms(db, 2, prefix="kept-")
    await db.execute(
        """UPDATE inbound_events
           SET status = CASE WHEN id = $1 THEN 'dead_letter' ELSE 'error' END,
               received_at = now() - interval '30 days',
               next_attempt_at = now() + interval '1 hour'
           WHERE id = ANY($2)""",
        kept[0],
        kept,
    )

    result = await worker.sweeper.sweep_once()

    assert result.pruned.deleted["inbound_events"] == 20  # in batches of 7
    assert not result.pruned.more
    assert await status_counts(db) == {"processed": 10, "dead_letter": 1, "error": 1}
    assert set(await db.fetchval("SELECT array_agg(id) FROM inbound_events")) == {
        *ids[20:],
        *kept,
    }
    assert await db.fetchval("SELECT count(*) FROM messages") == 30
    assert await db.fetchval("SELECT sum(message_count) FROM conversations") == 30
    pruned = read(metrics).value("messaging_pruned_rows_total", table="inbound_events")
    assert pruned == 20


async def test_a_retry_of_a_pruned_event_is_stored_again_but_makes_no_second_message(
    client: Client, make_worker: MakeWorker, db: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    worker = await make_worker(start=False)
    first = await client.post("/api/webhooks/sms", json=SMS_WEBHOOK)
    assert first.status == 202
    event_id = (await first.json())["id"]
    assert await worker.inbound.drain() == 1
    await age(db, "inbound_events", "received_at", [event_id], days=8)
    assert (await Pruner(pool, Metrics(), POLICY).prune()).deleted["inbound_events"] == 1

    # Within the window the retry is a duplicate; after it, a new event ...
    again = await client.post("/api/webhooks/sms", json=SMS_WEBHOOK)
    assert again.status == 202
    answer = await again.json()
    assert answer["duplicate"] is False and answer["id"] != event_id
    # ... that the worker processes without a second message.
    assert await worker.inbound.drain() == 1
    assert await status_counts(db) == {"processed": 1}
    [message] = await db.fetch("SELECT * FROM messages")
    assert (message["provider_message_id"], message["inbound_event_id"]) == (
        SMS_WEBHOOK["messaging_provider_id"],
        event_id,
    )
    assert await db.fetchval("SELECT message_count FROM conversations") == 1
    # The same provider id on the other channel is another message.
    email = {
        "from": "contact@gmail.com",
        "to": "user@usehatchapp.com",
        "xillio_id": SMS_WEBHOOK["messaging_provider_id"],
        "body": "same id, other channel",
        "attachments": [],
        "timestamp": "2024-11-01T14:00:00Z",
    }
    assert (await client.post("/api/webhooks/email", json=email)).status == 202
    assert await worker.inbound.drain() == 1
    assert await db.fetchval("SELECT count(*) FROM messages") == 2


async def test_old_idempotency_keys_are_pruned_and_their_sends_kept(
    client: Client, db: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    async def send(key: str) -> int:
        response = await client.post(
            "/api/messages/sms", json=SMS_SEND, headers={"Idempotency-Key": key}
        )
        assert response.status == 202
        return int((await response.json())["id"])

    old, recent = await send("old-key"), await send("recent-key")
    await age(db, "idempotency_keys", "created_at", ["old-key"], days=2)

    pruned = await Pruner(pool, Metrics(), POLICY).prune()

    assert pruned.deleted["idempotency_keys"] == 1
    assert await db.fetchval("SELECT array_agg(key) FROM idempotency_keys") == ["recent-key"]
    assert await db.fetchval("SELECT count(*) FROM messages") == 2
    assert await send("recent-key") == recent  # still the same send
    assert await send("old-key") not in (old, recent)  # forgotten: a new send


async def test_one_batch_at_a_time_across_processes_and_the_pause_between_them_too(
    make_worker: MakeWorker, db: asyncpg.Connection, database_url: str
) -> None:
    worker = await make_worker(start=False)
    ids = await insert_sms(db, 10)
    assert await worker.inbound.drain() == 10
    await age(db, "inbound_events", "received_at", ids, days=8)
    pool = await create_pool(database_url, size=2)
    holder = await asyncpg.connect(database_url)
    try:
        # Another process's batch is running: it has taken its turn.
        transaction = holder.transaction()
        await transaction.start()
        assert await retention_state.take_turn(holder, 0)
        pruner = Pruner(pool, Metrics(), POLICY)
        in_sweep = await pruner.prune(budget_s=5)
        assert (in_sweep.total, in_sweep.more) == (0, True)  # leaves it to that process
        waiting = asyncio.create_task(pruner.prune(wait=True))  # `messaging prune` waits
        await wait_until(lambda: waiting_on_lock(db), within=5)
        assert not waiting.done()
        await transaction.commit()
        done = await asyncio.wait_for(waiting, 10)
        assert (done.deleted["inbound_events"], done.more) == (10, False)

        # A batch that deleted rows starts the pause for every process.
        more = await insert_sms(db, 3, prefix="more-")
        assert await worker.inbound.drain() == 3
        await age(db, "inbound_events", "received_at", more, days=8)
        async with db.transaction():
            await retention_state.end_turn(db)
        paused = Pruner(pool, Metrics(), replace(POLICY, pause_s=60))
        assert (await paused.prune(budget_s=5)).more
        assert (await Pruner(pool, Metrics(), POLICY).prune()).deleted["inbound_events"] == 3
    finally:
        await holder.close()
        await pool.close()


async def waiting_on_lock(db: asyncpg.Connection) -> bool:
    """Whether some session has asked for retention's turn and was refused: a
    `messaging prune` that waits tries again and again."""
    calls = await db.fetchval(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE query LIKE '%pg_try_advisory_xact_lock%' AND pid <> pg_backend_pid()"
    )
    return bool(calls)


async def test_a_retention_of_zero_keeps_rows_for_good(
    make_worker: MakeWorker, db: asyncpg.Connection
) -> None:
    worker = await make_worker(start=False, event_retention_secs=0)
    ids = await insert_sms(db, 5)
    assert await worker.inbound.drain() == 5
    await age(db, "inbound_events", "received_at", ids, days=3650)
    result = await worker.sweeper.sweep_once()
    assert "inbound_events" not in result.pruned.deleted
    assert await status_counts(db) == {"processed": 5}


async def test_messaging_prune_runs_one_pass_and_says_what_it_deleted(
    make_worker: MakeWorker, db: asyncpg.Connection, database_url: str
) -> None:
    worker = await make_worker(start=False)
    ids = await insert_sms(db, 25)
    assert await worker.inbound.drain() == 25
    await age(db, "inbound_events", "received_at", ids[:15], days=2)

    done = await asyncio.to_thread(
        cli,
        database_url,
        "prune",
        MESSAGING_EVENT_RETENTION_SECS="86400",
        MESSAGING_PRUNE_BATCH_ROWS="4",
    )

    assert done.returncode == 0, done.stderr
    assert "pruned 15 row(s)" in done.stdout
    assert "15 from inbound_events" in done.stdout
    assert await status_counts(db) == {"processed": 10}
