"""The worker in-process against a real PostgreSQL: claims, set-based
processing, failures, retries, dead letters, replay, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from messaging.app import init_app
from messaging.config import Settings
from messaging.errors import DatabaseUnavailable
from messaging.metrics import Metrics
from messaging.store import inbound_events
from messaging.store.queries import query
from messaging.worker.listener import Listener
from tests.support.aliases import Client, MakeWorker
from tests.support.arrange import insert_sms
from tests.support.checks import assert_consistent, status_counts
from tests.support.metrics import read
from tests.support.observe import count_drains, count_sweeps
from tests.support.payloads import EMAIL_WEBHOOK, MMS_WEBHOOK, SMS_WEBHOOK
from tests.support.waiting import wait_until

POISON = "ALTER TABLE messages ADD CONSTRAINT test_poison CHECK (body NOT LIKE 'poison%')"


async def message_count(db: asyncpg.Connection) -> int:
    return int(await db.fetchval("SELECT count(*) FROM messages"))


async def event_row(db: asyncpg.Connection, event_id: int) -> asyncpg.Record:
    row = await db.fetchrow(
        """SELECT *, extract(epoch FROM next_attempt_at - now()) AS due_in_s
           FROM inbound_events WHERE id = $1""",
        event_id,
    )
    assert row is not None
    return row


# -- the happy path -------------------------------------------------------------


async def test_a_batch_becomes_messages_and_conversations(
    make_worker: MakeWorker, db: asyncpg.Connection
) -> None:
    worker = await make_worker(start=False)
    ids = await insert_sms(db, 50, pairs=5)
    assert await worker.inbound.drain() == 50
    assert await status_counts(db) == {"processed": 50}
    assert await message_count(db) == 50
    convs = await db.fetch("SELECT * FROM conversations ORDER BY id")
    assert [c["id"] for c in convs] == [1, 2, 3, 4, 5]  # dense: no identity values burnt
    assert sum(c["message_count"] for c in convs) == 50
    assert all(c["participant_a"] <= c["participant_b"] for c in convs)
    row = await db.fetchrow("SELECT * FROM messages WHERE inbound_event_id = $1", ids[0])
    assert (row["direction"], row["status"], row["body"]) == ("inbound", "received", "hello 1")
    await assert_consistent(db)


async def test_claims_again_while_batches_come_back_full(
    make_worker: MakeWorker, db: asyncpg.Connection
) -> None:
    metrics = Metrics()
    worker = await make_worker(start=False, batch_size=7, metrics=metrics)
    await insert_sms(db, 30)
    assert await worker.inbound.drain() == 30
    assert await status_counts(db) == {"processed": 30}
    assert read(metrics).value("messaging_events_claimed_total") == 30


async def test_batches_in_flight_share_a_backlog_exactly_once(
    make_worker: MakeWorker, db: asyncpg.Connection
) -> None:
    # Full batches start more claim loops; short ones stop them. Every event is
    # claimed once and becomes one message, whatever the loops' interleaving.
    metrics = Metrics()
    worker = await make_worker(start=False, batch_size=7, batches_in_flight=3, metrics=metrics)
    await insert_sms(db, 100, pairs=4)
    assert await worker.inbound.drain() == 100
    assert await status_counts(db) == {"processed": 100}
    assert read(metrics).value("messaging_events_claimed_total") == 100
    assert await message_count(db) == 100
    await assert_consistent(db)


async def test_one_batch_in_flight_claims_batch_after_batch(
    make_worker: MakeWorker, db: asyncpg.Connection
) -> None:
    metrics = Metrics()
    worker = await make_worker(start=False, batch_size=7, batches_in_flight=1, metrics=metrics)
    await insert_sms(db, 30)
    assert await worker.inbound.drain() == 30
    assert await status_counts(db) == {"processed": 30}
    # One loop, batch after batch: four full ones, then the short one that stops it.
    samples = read(metrics)
    assert samples.value("messaging_worker_batch_size_count") == 5
    assert samples.value("messaging_worker_batch_size_sum") == 30
    buckets = {
        le: samples.value("messaging_worker_batch_size_bucket", le=le) for le in ("2.0", "5.0")
    }
    assert buckets == {"2.0": 1, "5.0": 1}  # cumulative: one short batch, the rest of 7
    await assert_consistent(db)


async def test_claim_stamps_the_processor(
    make_worker: MakeWorker, db: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    worker = await make_worker(start=False)
    other = await make_worker(start=False)
    assert worker.processor_id != other.processor_id
    [event_id] = await insert_sms(db, 1)
    [claimed] = await inbound_events.claim(pool, worker.processor_id, 10)
    row = await event_row(db, event_id)
    assert (claimed.id, row["status"], row["processor_id"]) == (
        event_id,
        "processing",
        worker.processor_id,
    )
    assert (row["attempt_count"], claimed.attempt_count) == (1, 1)
    assert row["claimed_at"] is not None
    # Claimed rows are not claimable by another worker.
    assert await inbound_events.claim(pool, other.processor_id, 10) == []


async def test_later_messages_move_last_activity_earlier_ones_do_not(
    make_worker: MakeWorker, db: asyncpg.Connection
) -> None:
    worker = await make_worker(start=False)
    await insert_sms(db, 3, prefix="late-", pairs=1)  # 14:00:01 .. 14:00:03
    await worker.inbound.drain()
    await insert_sms(db, 1, prefix="early-", pairs=1)  # 14:00:01 again
    await worker.inbound.drain()
    conv = await db.fetchrow("SELECT * FROM conversations")
    assert conv["message_count"] == 4
    assert conv["last_activity_at"].isoformat() == "2024-11-01T14:00:03+00:00"
    await assert_consistent(db)


async def test_the_claim_uses_the_due_index(db: asyncpg.Connection) -> None:
    # The queue only grows; the claim must not scan the processed rows.
    await db.execute(
        """INSERT INTO inbound_events (channel, provider_message_id, message_type, from_address,
                                      to_address, payload, status, processed_at)
           SELECT 'sms', 'old-' || i, 'sms', '+18045551234', '+12016661234', '{}', 'processed', now()
           FROM generate_series(1, 20000) AS i"""
    )
    await insert_sms(db, 5)
    await db.execute("ANALYZE inbound_events")
    plan = "\n".join(
        r[0]
        for r in await db.fetch("EXPLAIN " + query("inbound_events.sql", "claim_events"), "p", 500)
    )
    assert "inbound_events_due_idx" in plan, plan


# -- duplicates and replay --------------------------------------------------------


async def test_duplicate_webhooks_give_one_message(
    aiohttp_client: Any, settings: Settings, db: asyncpg.Connection
) -> None:
    client: Client = await aiohttp_client(init_app(settings, worker=True))
    sms = {**SMS_WEBHOOK, "messaging_provider_id": "dup-1", "body": "once"}
    for _ in range(5):
        assert (await client.post("/api/webhooks/sms", json=sms)).status == 202
    await asyncio.gather(*(client.post("/api/webhooks/sms", json=sms) for _ in range(20)))
    assert await db.fetchval("SELECT count(*) FROM inbound_events") == 1
    # Once the one event is processed there is nothing left to make a message of.
    await wait_until(
        lambda: db.fetchval("SELECT status = 'processed' FROM inbound_events"), within=5
    )
    assert await message_count(db) == 1
    assert await db.fetchval("SELECT message_count FROM conversations WHERE id = 1") == 1


async def test_a_replayed_processed_event_makes_no_second_message(
    make_worker: MakeWorker, db: asyncpg.Connection
) -> None:
    worker = await make_worker(start=False)
    [event_id] = await insert_sms(db, 1)
    await worker.inbound.drain()
    # Even forced back into the queue behind the CLI's back, the event cannot
    # make a second message or count twice.
    await db.execute(
        "UPDATE inbound_events SET status = 'received', attempt_count = 0 WHERE id = $1", event_id
    )
    await worker.inbound.drain()
    assert (await event_row(db, event_id))["status"] == "processed"
    assert await message_count(db) == 1
    assert await db.fetchval("SELECT message_count FROM conversations") == 1
    # The CLI refuses to replay a processed event at all.
    [result] = await inbound_events.replay(db, [event_id])
    assert (result.requeued, result.status_before) == (False, "processed")


# -- failures ---------------------------------------------------------------------


async def test_a_failing_event_walks_error_attempts_dead_letter_and_replays_once(
    make_worker: MakeWorker, db: asyncpg.Connection
) -> None:
    await db.execute(POISON)
    metrics = Metrics()
    worker = await make_worker(
        start=False, max_retries=3, backoff_base_ms=60_000, backoff_cap_ms=600_000, metrics=metrics
    )
    good = await insert_sms(db, 9, prefix="good-")
    [bad] = await insert_sms(db, 1, prefix="bad-", body="poison ")

    await worker.inbound.drain()
    assert len(good) == 9 and await message_count(db) == 9
    row = await event_row(db, bad)
    assert (row["status"], row["attempt_count"]) == ("error", 1)
    assert "test_poison" in row["last_error"]
    assert 30 - 1 <= row["due_in_s"] <= 60  # base 60 s, jittered into [30, 60]

    # next_attempt_at is honoured: not due, not claimed.
    assert await worker.inbound.drain() == 0
    assert (await event_row(db, bad))["attempt_count"] == 1

    expected_delays = {2: (60, 120), 3: None}
    for attempt in (2, 3):
        await db.execute("UPDATE inbound_events SET next_attempt_at = now() WHERE id = $1", bad)
        assert await worker.inbound.drain() == 1
        row = await event_row(db, bad)
        assert row["attempt_count"] == attempt
        bounds = expected_delays[attempt]
        if bounds:
            assert row["status"] == "error"
            assert bounds[0] - 1 <= row["due_in_s"] <= bounds[1]
        else:
            assert row["status"] == "dead_letter"

    # A dead letter is never claimed again, due or not.
    await db.execute("UPDATE inbound_events SET next_attempt_at = now() WHERE id = $1", bad)
    assert await worker.inbound.drain() == 0
    samples = read(metrics)
    assert samples.value("messaging_events_errored_total") == 3
    assert samples.value("messaging_events_dead_lettered_total") == 1
    assert [e.id for e in await inbound_events.list_events(db, "dead_letter", 10)] == [bad]

    # Fixed, then replayed: exactly one message, attempts reset.
    await db.execute("ALTER TABLE messages DROP CONSTRAINT test_poison")
    [result] = await inbound_events.replay(db, [bad])
    assert result.requeued and result.status_before == "dead_letter"
    assert (await event_row(db, bad))["attempt_count"] == 0
    assert await worker.inbound.drain() == 1
    assert (await event_row(db, bad))["status"] == "processed"
    assert await db.fetchval("SELECT count(*) FROM messages WHERE inbound_event_id = $1", bad) == 1
    assert await inbound_events.replay_dead_letters(db) == []
    await assert_consistent(db)


async def test_failing_events_are_isolated_and_the_rest_commits(
    make_worker: MakeWorker, db: asyncpg.Connection
) -> None:
    await db.execute(POISON)
    worker = await make_worker(start=False)
    ids = await insert_sms(db, 100, pairs=7)
    poisoned = [ids[3], ids[50], ids[51], ids[99]]
    await db.execute(
        """UPDATE inbound_events SET payload = jsonb_set(payload, '{body}', '"poison"')
           WHERE id = ANY($1)""",
        poisoned,
    )
    assert await worker.inbound.drain() == 100
    assert await status_counts(db) == {"processed": 96, "error": 4}
    errored = await db.fetch("SELECT id FROM inbound_events WHERE status = 'error' ORDER BY id")
    assert [r["id"] for r in errored] == poisoned
    await assert_consistent(db)


async def test_a_payload_the_worker_cannot_read_fails_alone(
    make_worker: MakeWorker, db: asyncpg.Connection
) -> None:
    worker = await make_worker(start=False)
    ids = await insert_sms(db, 5)
    await db.execute(
        "UPDATE inbound_events SET payload = payload - 'timestamp' WHERE id = $1", ids[2]
    )
    await worker.inbound.drain()
    row = await event_row(db, ids[2])
    assert row["status"] == "error" and "timestamp" in row["last_error"]
    assert await status_counts(db) == {"processed": 4, "error": 1}


async def test_a_connection_lost_mid_batch_costs_no_attempt(
    make_worker: MakeWorker, db: asyncpg.Connection
) -> None:
    # Slow the batch down so that it can be caught in flight.
    await db.execute(
        """CREATE FUNCTION test_slow() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN PERFORM pg_sleep(0.4); RETURN NULL; END $$;
           CREATE TRIGGER test_slow AFTER INSERT ON messages
               FOR EACH STATEMENT EXECUTE FUNCTION test_slow();"""
    )
    worker = await make_worker(start=False)
    ids = await insert_sms(db, 20)
    drain = asyncio.create_task(worker.inbound.drain())

    async def batch_backend() -> int | None:
        return await db.fetchval(  # type: ignore[no-any-return]
            """SELECT pid FROM pg_stat_activity
               WHERE datname = current_database() AND wait_event = 'PgSleep'"""
        )

    pid = await wait_until(batch_backend, within=5, interval=0.01)
    assert await db.fetchval("SELECT pg_terminate_backend($1)", pid)
    await asyncio.wait_for(drain, timeout=10)
    rows = await db.fetch("SELECT status, attempt_count, last_error FROM inbound_events")
    assert {(r["status"], r["attempt_count"], r["last_error"]) for r in rows} == {
        ("processed", 1, None)
    }
    assert len(rows) == len(ids) == await message_count(db)


async def test_an_idle_connection_killed_between_batches_costs_no_attempt(
    make_worker: MakeWorker, db: asyncpg.Connection
) -> None:
    worker = await make_worker(start=False)
    await insert_sms(db, 1, prefix="before-")
    await worker.inbound.drain()  # leaves an idle connection in the pool
    await db.execute(
        """SELECT pg_terminate_backend(pid) FROM pg_stat_activity
           WHERE datname = current_database() AND application_name = 'messaging'"""
    )
    await wait_until(
        lambda: db.fetchval(
            """SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity
               WHERE datname = current_database() AND application_name = 'messaging')"""
        ),
        within=5,
    )
    [event_id] = await insert_sms(db, 1, prefix="after-")

    async def drained() -> bool:
        # The pool may hand out the dead connection once before it notices: that
        # use fails as DatabaseUnavailable before any claim, and the run loop
        # would simply try again, as this does.
        with contextlib.suppress(DatabaseUnavailable):
            await worker.inbound.drain()
        return bool((await event_row(db, event_id))["status"] == "processed")

    await wait_until(drained, within=10)
    assert (await event_row(db, event_id))["attempt_count"] == 1


async def test_released_claims_cost_no_attempt(
    make_worker: MakeWorker, db: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    worker = await make_worker(start=False)
    [first, retried] = await insert_sms(db, 2)
    await db.execute(
        "UPDATE inbound_events SET attempt_count = 2, status = 'error' WHERE id = $1", retried
    )
    claimed = await inbound_events.claim(pool, worker.processor_id, 10)
    assert (
        await inbound_events.release_claims(pool, [c.id for c in claimed], worker.processor_id) == 2
    )
    rows = await db.fetch(
        "SELECT id, status, attempt_count, processor_id FROM inbound_events ORDER BY id"
    )
    assert [tuple(r) for r in rows] == [(first, "received", 0, None), (retried, "error", 2, None)]


# -- the sweep: stale claims --------------------------------------------------------


async def test_stale_claims_at_the_boundaries(
    make_worker: MakeWorker, db: asyncpg.Connection
) -> None:
    metrics = Metrics()
    worker = await make_worker(start=False, claim_timeout_secs=10.0, max_retries=3, metrics=metrics)
    inside, beyond, last, done, waiting = await insert_sms(db, 5)

    async def claim(event_id: int, age_s: float, attempts: int, status: str = "processing") -> None:
        await db.execute(
            """UPDATE inbound_events
               SET status = $2, processor_id = 'host:1:dead', attempt_count = $3,
                   claimed_at = now() - make_interval(secs => $4)
               WHERE id = $1""",
            event_id, status, attempts, age_s,
        )  # fmt: skip

    await claim(inside, 9.5, 1)  # just inside the timeout
    await claim(beyond, 10.5, 1)  # just beyond it
    await claim(last, 10.5, 3)  # beyond it, at the last attempt
    await claim(done, 3600, 1, "processed")
    await claim(waiting, 3600, 1, "error")
    await db.execute(
        "UPDATE inbound_events SET next_attempt_at = now() + interval '1 hour' WHERE id = $1",
        waiting,
    )
    before = {r["id"]: dict(r) for r in await db.fetch("SELECT * FROM inbound_events")}

    result = await worker.sweeper.sweep_once()

    after = {r["id"]: dict(r) for r in await db.fetch("SELECT * FROM inbound_events")}
    for untouched in (inside, done, waiting):
        assert after[untouched] == before[untouched]
    assert after[beyond]["status"] == "error"
    assert (
        "timed out" in after[beyond]["last_error"] and "host:1:dead" in after[beyond]["last_error"]
    )
    assert after[beyond]["attempt_count"] == 1
    assert after[beyond]["next_attempt_at"] > before[beyond]["next_attempt_at"]
    assert after[last]["status"] == "dead_letter"
    assert "timed out" in after[last]["last_error"]
    assert (result.events.retried, result.events.gave_up) == (1, 1)
    assert read(metrics).value("messaging_events_stale_claims_total") == 2

    # Once its retry is due, the returned event is processed normally.
    await db.execute("UPDATE inbound_events SET next_attempt_at = now() WHERE id = $1", beyond)
    assert await worker.inbound.drain() == 1
    assert (await event_row(db, beyond))["attempt_count"] == 2
    assert (await event_row(db, beyond))["status"] == "processed"


async def test_the_sweep_refreshes_the_gauges(
    make_worker: MakeWorker, db: asyncpg.Connection
) -> None:
    metrics = Metrics()
    worker = await make_worker(start=False, metrics=metrics)
    await insert_sms(db, 12)
    await db.execute(
        "UPDATE inbound_events SET next_attempt_at = now() + interval '1 hour' WHERE id % 4 = 0"
    )
    result = await worker.sweeper.sweep_once()
    assert result.events.due == 9
    samples = read(metrics)
    assert samples.value("messaging_events_queued") == 9
    assert samples.value("messaging_pg_notification_queue_usage") == 0


# -- waking up: NOTIFY, the sweep ------------------------------------------------


async def processed(db: asyncpg.Connection, event_id: int) -> bool:
    return bool(
        await db.fetchval("SELECT status = 'processed' FROM inbound_events WHERE id = $1", event_id)
    )


async def test_the_notification_alone_wakes_the_worker(
    make_worker: MakeWorker, db: asyncpg.Connection
) -> None:
    worker = await make_worker(start=False, sweep_interval_ms=60_000)
    sweeps = count_sweeps(worker)
    await worker.start()
    listener = worker.listener
    assert listener is not None
    # Start-up behind us: the first sweep done, the listener connected (which
    # wakes the loop once), and a first event processed.
    await wait_until(lambda: sweeps and listener.connected, within=5)
    [first] = await insert_sms(db, 1, prefix="first-")
    await wait_until(lambda: processed(db, first), within=5)
    [event_id] = await insert_sms(db, 1)
    # Well within the 60 s sweep, and no sweep ran: the notification woke it.
    await wait_until(lambda: processed(db, event_id), within=5, interval=0.005)
    assert len(sweeps) == 1


async def test_with_listen_off_the_sweep_alone_finds_events(
    make_worker: MakeWorker, db: asyncpg.Connection
) -> None:
    worker = await make_worker(start=False, listen=False, sweep_interval_ms=100)
    sweeps = count_sweeps(worker)
    await worker.start()
    await wait_until(lambda: sweeps, within=5)
    [event_id] = await insert_sms(db, 1)
    await wait_until(lambda: processed(db, event_id), within=3)
    # It was a sweep that found it: one ran after the insert and saw it due.
    await wait_until(lambda: any(result.events.due for result in sweeps), within=3)


async def test_with_listen_off_nothing_else_wakes_the_worker(
    make_worker: MakeWorker, db: asyncpg.Connection, database_url: str
) -> None:
    # The control for the two tests above: no listener, no sweep due, no work.
    worker = await make_worker(start=False, listen=False, sweep_interval_ms=60_000)
    assert worker.listener is None
    sweeps, drains = count_sweeps(worker), count_drains(worker)
    await worker.start()
    # Start-up behind us: the first sweep and the first claim done.
    await wait_until(lambda: sweeps and drains == [0], within=5)
    # A listener of our own, in the worker's event loop, hears the insert's
    # notification: a listening worker would have been woken with it.
    heard: list[str] = []
    witness = Listener(database_url, Metrics())
    witness.subscribe("inbound_events", heard.append)
    witness.start()
    try:
        await wait_until(lambda: heard == [""], within=5)  # the call on connecting
        await insert_sms(db, 1)
        await wait_until(lambda: heard == ["", ""], within=5)
        await db.execute("SELECT 1")  # and the loop goes round a few more times
    finally:
        await witness.close()
    assert (len(sweeps), len(drains)) == (1, 1)  # never woken again
    assert await status_counts(db) == {"received": 1}


# -- lifecycle -----------------------------------------------------------------------


async def test_stop_finishes_the_batch_in_hand_and_claims_no_more(
    make_worker: MakeWorker, db: asyncpg.Connection
) -> None:
    await db.execute(
        """CREATE FUNCTION test_slow() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN PERFORM pg_sleep(0.3); RETURN NULL; END $$;
           CREATE TRIGGER test_slow AFTER INSERT ON messages
               FOR EACH STATEMENT EXECUTE FUNCTION test_slow();"""
    )
    await insert_sms(db, 50)
    worker = await make_worker(start=False, batch_size=10, sweep_interval_ms=60_000)
    await worker.start()
    await wait_until(
        lambda: db.fetchval("SELECT count(*) FROM inbound_events WHERE status = 'processing'"),
        within=5,
    )
    await worker.stop()
    counts = await status_counts(db)
    assert "processing" not in counts
    assert counts["processed"] % 10 == 0 and counts["processed"] < 50
    assert counts["received"] == 50 - counts["processed"]
    await assert_consistent(db)


async def test_serve_processes_the_api_webhooks_and_reports_the_listener(
    aiohttp_client: Any, settings: Settings, db: asyncpg.Connection
) -> None:
    client: Client = await aiohttp_client(init_app(settings, worker=True))
    sends = [
        ("/api/webhooks/sms", {**SMS_WEBHOOK, "body": "Hi"}),
        ("/api/webhooks/sms", {**MMS_WEBHOOK, "body": "MMS"}),
        ("/api/webhooks/email",
         {**EMAIL_WEBHOOK, "body": "<html><body>Hi</body></html>", "attachments": None}),
    ]  # fmt: skip
    for path, body in sends:
        assert (await client.post(path, json=body)).status == 202
    await wait_until(lambda: db.fetchval("SELECT count(*) = 3 FROM messages"), within=5)
    convs = await db.fetch("SELECT kind, id, message_count FROM conversations")
    # Dense ids from 1; new conversations of one batch are created in key order
    # (deadlock-free between workers), so which one is 1 depends on batching.
    assert {c["id"] for c in convs} == {1, 2}
    assert {c["kind"]: c["message_count"] for c in convs} == {"sms": 2, "email": 1}
    ready = await (await client.get("/readyz")).json()
    assert ready["checks"]["listener"]["ok"] is True
    assert ready["checks"]["listener"]["channels"] == [
        "inbound_events",
        "outbound_messages",
        "stream_events",
    ]


async def test_readyz_without_listen_reports_it_disabled(
    aiohttp_client: Any, settings: Settings
) -> None:
    client = await aiohttp_client(init_app(settings.replace(listen=False), worker=True))
    ready = await (await client.get("/readyz")).json()
    assert ready["checks"]["listener"] == {"ok": True, "enabled": False}


async def test_the_received_to_processed_latency_is_measured(
    make_worker: MakeWorker, db: asyncpg.Connection
) -> None:
    metrics = Metrics()
    worker = await make_worker(start=False, metrics=metrics)
    await insert_sms(db, 3)
    await db.execute("UPDATE inbound_events SET received_at = now() - interval '2 seconds'")
    await worker.inbound.drain()
    samples = read(metrics)
    assert samples.value("messaging_event_latency_seconds_count") == 3
    assert 6 <= samples.value("messaging_event_latency_seconds_sum") < 9
    rows = await db.fetch("SELECT processed_at - received_at AS lat FROM inbound_events")
    assert all(timedelta(seconds=2) <= r["lat"] < timedelta(seconds=3) for r in rows)


@pytest.mark.parametrize("kind", ["sms", "email"])
async def test_addresses_differing_only_in_punctuation_order_like_python(
    make_worker: MakeWorker, db: asyncpg.Connection, kind: str
) -> None:
    # 'a.b@x.com' < 'ab@x.com' by code point but not under en_US collation; the
    # participant columns are COLLATE "C" so the check agrees with Python.
    worker = await make_worker(start=False)
    a, b = (
        ("a.b@example.com", "ab@example.com")
        if kind == "email"
        else ("+12015550000", "+12015550001")
    )
    channel = "email" if kind == "email" else "sms"
    await db.execute(
        """INSERT INTO inbound_events (channel, provider_message_id, message_type, from_address, to_address, payload)
           VALUES ($1, 'p-1', $1, $3, $2, '{"body": "x", "timestamp": "2024-11-01T14:00:00Z"}'),
                  ($1, 'p-2', $1, $2, $3, '{"body": "y", "timestamp": "2024-11-01T14:00:00Z"}')""",
        channel, a, b,
    )  # fmt: skip
    await worker.inbound.drain()
    conv = await db.fetchrow("SELECT * FROM conversations")
    assert (conv["participant_a"], conv["participant_b"], conv["message_count"]) == (a, b, 2)
