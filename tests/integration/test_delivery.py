"""Sends delivered through the mock providers over real HTTP, by the worker's
delivery loop, against a real PostgreSQL: outcomes, retries and their timing,
what wakes the loop, stale claims, shutdown. Across all of them the mock never counts two accepted
deliveries for one message."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestServer

from messaging.app import init_mock_app
from messaging.config import Settings
from messaging.store import messages
from messaging.store.queries import query
from tests.support.aliases import MakeWorker, ServerFactory
from tests.support.arrange import insert_sends
from tests.support.observe import count_sweeps
from tests.support.payloads import EMAIL_SEND as EMAIL
from tests.support.payloads import SMS_SEND as SMS
from tests.support.service import Service, serve_on_own_port
from tests.support.waiting import wait_until

# Fast retries, a short provider timeout, a sweep that notices moved timestamps.
FAST = {
    "backoff_base_ms": 20,
    "backoff_cap_ms": 200,
    "provider_timeout_ms": 300,
    "sweep_interval_ms": 100,
}


@pytest.fixture
async def service(
    aiohttp_server: ServerFactory, settings: Settings, db: asyncpg.Connection
) -> AsyncIterator[Service]:
    server = await serve_on_own_port(
        aiohttp_server, settings.replace(mock_seed=1, **FAST), worker=True
    )
    async with aiohttp.ClientSession() as session:
        yield Service(server, session, db)


async def assert_one_delivery_each(service: Service, provider: str = "sms") -> None:
    """Every message the provider accepted, it accepted once, and our message
    records the id it gave."""
    seen = await service.deliveries(provider)
    keys = [d["idempotency_key"] for d in seen["deliveries"]]
    assert len(keys) == len(set(keys))
    for delivery in seen["deliveries"]:
        message_id = int(delivery["idempotency_key"].removeprefix("msg-"))
        row = await service.message(message_id)
        if row["status"] == "sent":
            assert row["provider_message_id"] == delivery["provider_message_id"]


def attempts(seen: dict[str, Any], message_id: int) -> list[dict[str, Any]]:
    return [e for e in seen["log"] if e["idempotency_key"] == f"msg-{message_id}"]


async def settled(service: Service) -> None:
    """Until the worker's start-up is behind it: the listener connected (which
    wakes every loop once) and the first sweep done (it sets the sends gauge)."""
    listener = service.worker.listener
    assert listener is not None
    await wait_until(lambda: listener.connected, within=5)

    async def swept() -> bool:
        return (await service.metrics()).has("messaging_sends_queued")

    await wait_until(swept, within=5)


# -- outcomes ---------------------------------------------------------------------------


async def test_a_send_is_sent_with_the_providers_id(service: Service) -> None:
    # How soon is the benchmark's business (bench/); here, that it is sent.
    sms = await service.send(SMS)
    email = await service.send(EMAIL)
    for message_id in (sms, email):
        await service.wait_for(message_id, "sent", within=5)
    row = await service.message(sms)
    seen = await service.deliveries("sms")
    [delivery] = seen["deliveries"]
    assert delivery["idempotency_key"] == f"msg-{sms}"
    assert delivery["payload"] == {k: v for k, v in SMS.items()}
    assert row["provider_message_id"] == delivery["provider_message_id"]
    assert (row["delivery_attempts"], row["last_error"]) == (1, None)
    assert row["created_at"] <= row["delivered_at"]
    email_row = await service.message(email)
    assert email_row["provider_message_id"].startswith("email-")
    samples = await service.metrics()
    assert samples.value("messaging_sends_sent_total", channel="sms") == 1
    assert samples.value("messaging_send_latency_seconds_count", channel="email") == 1
    assert (
        samples.value("messaging_provider_requests_total", outcome="accepted", provider="sms") == 1
    )


async def test_429_with_retry_after_2_waits_at_least_2_seconds(service: Service) -> None:
    await service.mock_config("sms", script=["429"], retry_after_secs=2)
    message_id = await service.send(SMS)
    row = await service.wait_for(message_id, "queued", attempts=1, within=2)
    [first] = attempts(await service.deliveries("sms"), message_id)
    answered_at = datetime.fromisoformat(first["at"])
    assert first["answer"] == "429"
    assert "429" in row["last_error"]
    # Not before Retry-After (the backoff alone would be 10-20 ms).
    assert row["next_attempt_at"] >= answered_at + timedelta(seconds=2) - timedelta(milliseconds=5)
    assert row["next_attempt_at"] <= answered_at + timedelta(seconds=3)
    # Three sweeps run from now on (100 ms apart): none of them sends it early.
    sweeps = count_sweeps(service.worker)
    await wait_until(lambda: len(sweeps) >= 3, within=5)
    assert len(attempts(await service.deliveries("sms"), message_id)) == 1
    # Rather than wait the 2 s: the time has come.
    await service.db.execute(
        "UPDATE messages SET next_attempt_at = now() WHERE id = $1", message_id
    )
    row = await service.wait_for(message_id, "sent", within=2)
    assert row["delivery_attempts"] == 2
    assert [a["answer"] for a in attempts(await service.deliveries("sms"), message_id)] == [
        "429",
        "ok",
    ]
    await assert_one_delivery_each(service)


async def test_500_three_times_then_ok_is_one_delivery(service: Service) -> None:
    await service.mock_config("sms", script=["500", "500", "500", "ok"])
    message_id = await service.send(SMS)
    row = await service.wait_for(message_id, "sent", within=3)
    assert row["delivery_attempts"] == 4
    assert "500" in row["last_error"]  # the last failure, kept for the record
    seen = await service.deliveries("sms")
    assert (seen["accepted"], seen["answers"]) == (1, {"500": 3, "200": 1})
    assert seen["deliveries"][0]["requests"] == 4
    assert row["provider_message_id"] == seen["deliveries"][0]["provider_message_id"]
    # The retries came in the order and no sooner than the backoff asked.
    times = [datetime.fromisoformat(a["at"]) for a in attempts(seen, message_id)]
    assert all(
        later - earlier >= timedelta(milliseconds=10)
        for earlier, later in itertools.pairwise(times)
    )
    assert (await service.metrics()).value("messaging_sends_retried_total", channel="sms") == 3


async def test_400_fails_at_once_and_is_not_retried(service: Service) -> None:
    await service.mock_config("sms", script=["400"])
    message_id = await service.send(SMS)
    row = await service.wait_for(message_id, "failed", within=2)
    assert (row["delivery_attempts"], row["provider_message_id"]) == (1, None)
    assert "400" in row["last_error"]
    sweeps = count_sweeps(service.worker)
    await wait_until(lambda: len(sweeps) >= 3, within=5)  # three sweeps: none retries it
    seen = await service.deliveries("sms")
    assert (seen["requests"], seen["accepted"]) == (1, 0)
    assert (await service.message(message_id))["status"] == "failed"
    assert (await service.metrics()).value("messaging_sends_failed_total", channel="sms") == 1


async def test_a_hang_times_out_and_the_retry_is_the_same_delivery(service: Service) -> None:
    # The mock takes the message, then holds its answer past our timeout (300 ms).
    await service.mock_config("sms", script=["hang"], hang_secs=2)
    message_id = await service.send(SMS)
    row = await service.wait_for(message_id, "sent", within=3)
    assert row["delivery_attempts"] == 2
    assert "in time" in row["last_error"]
    seen = await service.deliveries("sms")
    assert seen["accepted"] == 1
    assert [a["answer"] for a in attempts(seen, message_id)] == ["hang", "repeat"]
    assert row["provider_message_id"] == seen["deliveries"][0]["provider_message_id"]


async def test_out_of_attempts_is_failed_with_the_reason(
    aiohttp_server: ServerFactory, settings: Settings, db: asyncpg.Connection
) -> None:
    server = await serve_on_own_port(
        aiohttp_server, settings.replace(max_retries=3, **FAST), worker=True
    )
    async with aiohttp.ClientSession() as session:
        service = Service(server, session, db)
        await service.mock_config("email", script=["500", "429", "500", "ok"], retry_after_secs=0)
        message_id = await service.send(EMAIL)
        row = await service.wait_for(message_id, "failed", within=3)
        assert row["delivery_attempts"] == 3
        assert row["last_error"] == "gave up after 3 attempts: provider answered 500"
        assert (await service.deliveries("email"))["accepted"] == 0


async def test_random_faults_deliver_every_send_exactly_once(
    aiohttp_server: ServerFactory, settings: Settings, db: asyncpg.Connection
) -> None:
    server = await serve_on_own_port(
        aiohttp_server, settings.replace(max_retries=30, send_concurrency=8, **FAST), worker=True
    )
    async with aiohttp.ClientSession() as session:
        service = Service(server, session, db)
        await service.mock_config(
            "sms",
            rates={"429": 0.2, "500": 0.2, "hang": 0.05},
            retry_after_secs=0,
            hang_secs=0.5,
            seed=7,
        )
        ids = [await service.send({**SMS, "body": f"message {i}"}) for i in range(40)]
        await wait_until(
            lambda: db.fetchval("SELECT count(*) = 40 FROM messages WHERE status = 'sent'"),
            within=10,
        )
        seen = await service.deliveries("sms")
        assert seen["accepted"] == 40
        assert sorted(d["idempotency_key"] for d in seen["deliveries"]) == sorted(
            f"msg-{i}" for i in ids
        )
        assert seen["answers"].get("429", 0) + seen["answers"].get("500", 0) > 0
        await assert_one_delivery_each(service)


# -- waking up ---------------------------------------------------------------------------


async def test_the_notification_alone_wakes_the_delivery_loop(
    aiohttp_server: ServerFactory, settings: Settings, db: asyncpg.Connection
) -> None:
    server = await serve_on_own_port(
        aiohttp_server, settings.replace(sweep_interval_ms=60_000), worker=True
    )
    async with aiohttp.ClientSession() as session:
        service = Service(server, session, db)
        await settled(service)
        # A first send, so that whatever the start-up woke has run its course.
        await service.wait_for(await service.send(SMS), "sent", within=5)
        sweeps = count_sweeps(service.worker)
        message_id = await service.send({**SMS, "body": "the second"})
        # Well within the 60 s sweep: only the notification can have woken it.
        await service.wait_for(message_id, "sent", within=5)
        assert sweeps == []


async def test_a_retry_wakes_its_loop_when_due_without_the_sweep(
    aiohttp_server: ServerFactory, settings: Settings, db: asyncpg.Connection
) -> None:
    server = await serve_on_own_port(
        aiohttp_server,
        settings.replace(sweep_interval_ms=60_000, backoff_base_ms=100, backoff_cap_ms=100),
        worker=True,
    )
    async with aiohttp.ClientSession() as session:
        service = Service(server, session, db)
        await settled(service)
        sweeps = count_sweeps(service.worker)
        await service.mock_config("sms", script=["500", "500"])
        message_id = await service.send(SMS)
        row = await service.wait_for(message_id, "sent", within=5)
        assert row["delivery_attempts"] == 3
        assert sweeps == []  # the retries were woken by the loop's own timer


# -- the loop in-process, on a mock of its own -------------------------------------------


@pytest.fixture
async def mock_server(aiohttp_server: ServerFactory) -> TestServer:
    return await aiohttp_server(init_mock_app(Settings(mock_seed=1)))


def to_mock(mock_server: TestServer, **changes: Any) -> dict[str, Any]:
    base = str(mock_server.make_url("/mock")).rstrip("/")
    return {"sms_provider_url": f"{base}/sms", "email_provider_url": f"{base}/email", **changes}


async def statuses(db: asyncpg.Connection) -> dict[str, int]:
    rows = await db.fetch("SELECT status, count(*) AS n FROM messages GROUP BY status")
    return {r["status"]: r["n"] for r in rows}


async def mock_deliveries(mock_server: TestServer, provider: str = "sms") -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(mock_server.make_url(f"/mock/{provider}/deliveries")) as response,
    ):
        body: dict[str, Any] = await response.json()
        return body


async def test_stale_claims_are_requeued_by_the_sweep_and_delivered_once(
    make_worker: MakeWorker, mock_server: TestServer, db: asyncpg.Connection
) -> None:
    worker = await make_worker(
        start=False, **to_mock(mock_server, claim_timeout_secs=10, max_retries=3)
    )
    crashed, fresh, last = await insert_sends(db, 3)
    # A worker took them, delivered the first (the provider has it) and died
    # before recording it; its claim on the second is still young; the third
    # was at its last attempt.
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            mock_server.make_url("/mock/sms/messages"),
            json={"from": "+12016661234", "to": "+18045551234", "body": "hello 0"},
            headers={"Idempotency-Key": f"msg-{crashed}"},
        ) as response,
    ):
        delivered = (await response.json())["messaging_provider_id"]
    claim = """UPDATE messages SET status = 'sending', processor_id = 'host:1:dead',
                      delivery_attempts = $3, claimed_at = now() - make_interval(secs => $2)
               WHERE id = $1"""
    await db.execute(claim, crashed, 10.5, 1)
    await db.execute(claim, fresh, 9.5, 1)
    await db.execute(claim, last, 10.5, 3)
    result = await worker.sweeper.sweep_once()
    assert (result.sends.retried, result.sends.gave_up, result.sends.due) == (1, 1, 1)
    row = await db.fetchrow("SELECT * FROM messages WHERE id = $1", crashed)
    assert row["status"] == "queued"
    assert "host:1:dead" in row["last_error"] and "timed out" in row["last_error"]
    row = await db.fetchrow("SELECT * FROM messages WHERE id = $1", last)
    assert row["status"] == "failed" and "last attempt" in row["last_error"]
    assert await worker.delivery.drain() == 1
    row = await db.fetchrow("SELECT * FROM messages WHERE id = $1", crashed)
    assert (row["status"], row["delivery_attempts"]) == ("sent", 2)
    assert row["provider_message_id"] == delivered  # the provider's answer to the repeat
    seen = await mock_deliveries(mock_server)
    assert seen["accepted"] == 1
    assert (await db.fetchrow("SELECT status FROM messages WHERE id = $1", fresh))[0] == "sending"


async def test_claims_are_exclusive_and_a_worker_whose_claim_was_taken_back_records_nothing(
    make_worker: MakeWorker, mock_server: TestServer, db: asyncpg.Connection, pool: asyncpg.Pool
) -> None:
    worker = await make_worker(start=False, **to_mock(mock_server))
    other = await make_worker(start=False, **to_mock(mock_server))
    ids = await insert_sends(db, 4)
    # Claims take at most what is asked, and never a send twice.
    first = await messages.claim(pool, worker.processor_id, 1)
    rest = await messages.claim(pool, other.processor_id, 10)
    assert [c.id for c in first] == ids[:1] and [c.id for c in rest] == ids[1:]
    assert await messages.claim(pool, worker.processor_id, 10) == []
    [claimed] = first
    message_id = claimed.id
    assert claimed.attempt == 1
    # The sweep took the claim back and another worker holds it now.
    await db.execute("UPDATE messages SET processor_id = 'other' WHERE id = $1", message_id)
    assert await messages.mark_sent(pool, message_id, worker.processor_id, "p-1") is None
    assert await messages.retry_later(pool, message_id, worker.processor_id, "x", 0, None) is None
    assert await messages.mark_failed(pool, message_id, worker.processor_id, "x") is False
    row = await db.fetchrow("SELECT * FROM messages WHERE id = $1", message_id)
    assert (row["status"], row["processor_id"], row["provider_message_id"]) == (
        "sending",
        "other",
        None,
    )
    # The holder records its outcome.
    assert await messages.mark_sent(pool, message_id, "other", "p-1") is not None


async def test_clean_shutdown_finishes_the_sends_in_flight_and_claims_no_more(
    make_worker: MakeWorker, mock_server: TestServer, db: asyncpg.Connection
) -> None:
    # Every answer is held back 0.3 s (within the 2 s timeout): sends stay in flight.
    async with (
        aiohttp.ClientSession() as session,
        session.patch(
            mock_server.make_url("/mock/sms/config"), json={"rates": {"hang": 1}, "hang_secs": 0.3}
        ),
    ):
        pass
    await insert_sends(db, 5)
    worker = await make_worker(
        **to_mock(
            mock_server, send_concurrency=2, provider_timeout_ms=2000, sweep_interval_ms=60_000
        )
    )
    await wait_until(
        lambda: db.fetchval("SELECT count(*) = 2 FROM messages WHERE status = 'sending'"), within=2
    )
    await worker.stop()
    assert await statuses(db) == {"sent": 2, "queued": 3}
    assert (await mock_deliveries(mock_server))["accepted"] == 2


async def test_the_claim_uses_the_due_index(db: asyncpg.Connection) -> None:
    # Delivered messages pile up; the claim must not scan them.
    await insert_sends(db, 1)
    await db.execute(
        """INSERT INTO messages (conversation_id, direction, message_type, from_address,
                                 to_address, body, sent_at, status, provider_message_id)
           SELECT 1, 'outbound', 'sms', '+12016661234', '+18045551234', 'old', now(), 'sent', 'p'
           FROM generate_series(1, 20000)"""
    )
    await db.execute("ANALYZE messages")
    plan = "\n".join(
        r[0] for r in await db.fetch("EXPLAIN " + query("messages.sql", "claim_sends"), "p", 32)
    )
    assert "messages_outbound_due_idx" in plan, plan
