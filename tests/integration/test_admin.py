"""The operator's routes (/api/admin/...) through the real HTTP stack and a real
database: the queues' counts and the processes' heartbeats, dead letters listed,
replayed and purged, failed sends listed and retried (through the mock provider,
under the same idempotency key), the admin scope, and the plans that keep the
counts and lists off the big tables."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import asyncpg
import pytest

from messaging.app import init_app
from messaging.config import Settings
from messaging.heartbeat import FORGET_AFTER_S, Heartbeat
from messaging.metrics import Metrics
from messaging.store.queries import query
from tests.support.aliases import Client, MakeWorker, ServerFactory
from tests.support.arrange import api_key, insert_sends, insert_sms
from tests.support.metrics import read
from tests.support.payloads import SMS_SEND
from tests.support.service import Service, serve_on_own_port
from tests.support.waiting import wait_until

MakeClient = Callable[..., Awaitable[Client]]

ADMIN_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/api/admin/queues", None),
    ("GET", "/api/admin/events", None),
    ("POST", "/api/admin/events/replay", {"all_dead": True}),
    ("DELETE", "/api/admin/events/1", None),
    ("GET", "/api/admin/sends", None),
    ("POST", "/api/admin/sends/1/retry", None),
]


async def call(
    client: Client,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Any:
    response = await client.request(method, path, json=body, headers=headers or {})
    assert response.status == status, (method, path, await response.text())
    if response.status == 204:
        return None
    return await response.json(content_type=None)


async def events_in(db: asyncpg.Connection, status: str, count: int, prefix: str) -> list[int]:
    ids = await insert_sms(db, count, prefix=prefix)
    await db.execute(
        """UPDATE inbound_events
           SET status = $2, attempt_count = 5, last_error = 'boom ' || id,
               processor_id = CASE WHEN $2 = 'processing' THEN 'p' END,
               claimed_at = CASE WHEN $2 = 'processing' THEN now() END,
               next_attempt_at = CASE WHEN $2 = 'error' THEN now() + interval '1 hour'
                                      ELSE next_attempt_at END
           WHERE id = ANY($1)""",
        ids,
        status,
    )
    return ids


async def sends_in(db: asyncpg.Connection, status: str, count: int) -> list[int]:
    ids = await insert_sends(db, count)
    await db.execute(
        """UPDATE messages
           SET status = $2, delivery_attempts = 5,
               last_error = CASE WHEN $2 = 'failed' THEN 'provider answered 400' END,
               provider_message_id = CASE WHEN $2 = 'sent' THEN 'p-' || id END,
               processor_id = CASE WHEN $2 = 'sending' THEN 'p' END,
               claimed_at = CASE WHEN $2 = 'sending' THEN now() END
           WHERE id = ANY($1)""",
        ids,
        status,
    )
    return ids


# -- the queues ---------------------------------------------------------------------------


async def test_queues_counts_events_and_sends_by_status(
    client: Client, db: asyncpg.Connection
) -> None:
    await insert_sms(db, 2, prefix="new-")
    overdue = await insert_sms(db, 1, prefix="late-")
    await db.execute(
        "UPDATE inbound_events SET next_attempt_at = now() - interval '90 seconds' WHERE id = $1",
        overdue[0],
    )
    await events_in(db, "error", 4, "err-")
    await events_in(db, "processing", 1, "held-")
    await events_in(db, "dead_letter", 5, "dead-")
    await events_in(db, "processed", 7, "done-")
    await sends_in(db, "queued", 1)
    await sends_in(db, "sending", 2)
    await sends_in(db, "failed", 3)
    await sends_in(db, "sent", 6)
    # The estimates come from the statistics; on a small table ANALYZE reads every row.
    await db.execute("ANALYZE inbound_events")
    await db.execute("ANALYZE messages")

    answer = await call(client, "GET", "/api/admin/queues")
    events = answer["events"]
    assert {k: v for k, v in events.items() if k != "oldest_due_age_seconds"} == {
        "received": 3,
        "error": 4,  # none due: their retry is an hour away
        "processing": 1,
        "dead_letter": 5,
        "processed_estimate": 7,
        "due": 3,
    }
    assert 90 <= events["oldest_due_age_seconds"] < 120
    assert answer["sends"] == {"queued": 1, "sending": 2, "failed": 3, "sent_estimate": 6}
    assert 0 <= answer["notification_queue_usage"] < 0.01


async def test_queues_say_null_estimates_before_the_tables_have_statistics(
    client: Client, db: asyncpg.Connection
) -> None:
    await db.execute("SELECT pg_stat_reset()")
    answer = await call(client, "GET", "/api/admin/queues")
    assert answer["events"]["processed_estimate"] in (None, 0)
    assert answer["sends"]["sent_estimate"] is None
    assert answer["events"]["oldest_due_age_seconds"] == 0


async def test_the_serving_process_beats_with_its_listeners_state(
    aiohttp_client: Any, settings: Settings, db: asyncpg.Connection
) -> None:
    client: Client = await aiohttp_client(init_app(settings.replace(heartbeat_secs=0.1)))

    async def listed() -> list[dict[str, Any]] | None:
        found = (await call(client, "GET", "/api/admin/queues"))["processes"]
        return found if found and found[0]["listener_state"] == "listening" else None

    [process] = await wait_until(listed, within=10)
    assert process["kind"] == "api"  # serve --no-worker
    assert process["fresh"] is True
    assert process["heartbeat_age_seconds"] < 1
    assert process["listener_since"] >= process["started_at"][:19]
    host, pid, _random = process["id"].split(":")
    assert (process["host"], process["pid"]) == (host, int(pid))
    await client.close()
    # A clean stop deletes the row.
    assert await db.fetchval("SELECT count(*) FROM processes") == 0


async def test_a_process_with_a_worker_beats_under_the_workers_processor_id(
    aiohttp_client: Any, settings: Settings
) -> None:
    app = init_app(settings.replace(heartbeat_secs=0.1), worker=True)
    client: Client = await aiohttp_client(app)

    async def listed() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = (await call(client, "GET", "/api/admin/queues"))["processes"]
        return found

    [process] = await wait_until(listed, within=10)
    from messaging.http.keys import WORKER

    assert (process["kind"], process["id"]) == ("serve", app[WORKER].processor_id)


async def test_a_silent_process_goes_stale_and_is_forgotten_after_an_hour(
    pool: asyncpg.Pool, db: asyncpg.Connection
) -> None:
    insert = """INSERT INTO processes (id, kind, host, pid, version, heartbeat_secs,
                    started_at, heartbeat_at, listener_state, listener_since)
                VALUES ($1, 'worker', 'h', 1, 'v', 1, now() - make_interval(secs => $2),
                        now() - make_interval(secs => $2), 'listening', now())"""
    await db.execute(insert, "h:1:late", 5.0)
    await db.execute(insert, "h:1:dead", FORGET_AFTER_S + 60)
    heartbeat = Heartbeat(pool, process_id="h:2:mine", kind="worker", period_s=1, listener=None)
    await heartbeat.beat_once()
    rows = {
        r["id"]: r
        for r in await db.fetch(
            "SELECT id, listener_state, heartbeat_at >= now() - 3 * interval '1 second' AS fresh"
            " FROM processes"
        )
    }
    assert set(rows) == {"h:1:late", "h:2:mine"}
    assert rows["h:1:late"]["fresh"] is False
    assert (rows["h:2:mine"]["fresh"], rows["h:2:mine"]["listener_state"]) == (True, "off")
    await heartbeat.stop()
    assert await db.fetchval("SELECT array_agg(id) FROM processes") == ["h:1:late"]


async def test_the_sweep_sets_the_oldest_due_events_age(
    make_worker: MakeWorker, db: asyncpg.Connection
) -> None:
    metrics = Metrics()
    worker = await make_worker(start=False, metrics=metrics)
    await worker.sweeper.sweep_once()
    assert read(metrics).value("messaging_events_oldest_due_age_seconds") == 0
    [event] = await insert_sms(db, 1)
    await db.execute(
        "UPDATE inbound_events SET next_attempt_at = now() - interval '42 seconds' WHERE id = $1",
        event,
    )
    await worker.sweeper.sweep_once()
    assert 42 <= read(metrics).value("messaging_events_oldest_due_age_seconds") < 60


# -- events -------------------------------------------------------------------------------


async def test_dead_letters_are_listed_a_page_at_a_time_with_their_last_error(
    client: Client, db: asyncpg.Connection
) -> None:
    dead = await events_in(db, "dead_letter", 3, "dead-")
    errors = await events_in(db, "error", 1, "err-")
    await events_in(db, "processed", 2, "done-")

    first = await call(client, "GET", "/api/admin/events?pageSize=2")
    assert first["meta"] == {"page": 1, "page_size": 2, "total": 3}
    assert [e["id"] for e in first["items"]] == dead[:2]
    item = first["items"][0]
    assert item == {
        "id": dead[0],
        "channel": "sms",
        "provider_message_id": "dead-1",
        "type": "sms",
        "status": "dead_letter",
        "attempt_count": 5,
        "last_error": f"boom {dead[0]}",
        "received_at": item["received_at"],
        "next_attempt_at": item["next_attempt_at"],
    }
    second = await call(client, "GET", "/api/admin/events?status=dead_letter&page=2&pageSize=2")
    assert [e["id"] for e in second["items"]] == dead[2:]
    past = await call(client, "GET", "/api/admin/events?page=9")
    assert (past["items"], past["meta"]["total"]) == ([], 3)
    waiting = await call(client, "GET", "/api/admin/events?status=error")
    assert [e["id"] for e in waiting["items"]] == errors
    assert waiting["meta"]["total"] == 1


async def test_only_dead_letters_and_errors_are_listed(client: Client) -> None:
    for status in ("processed", "received", "x"):
        problem = await call(client, "GET", f"/api/admin/events?status={status}", status=400)
        assert problem["errors"] == [
            {"field": "status", "message": "must be one of: dead_letter, error"}
        ]
    await call(client, "GET", "/api/admin/events?pageSize=-1", status=400)


async def test_replay_by_ids_says_what_was_requeued_and_why_not(
    client: Client, db: asyncpg.Connection
) -> None:
    dead = await events_in(db, "dead_letter", 2, "dead-")
    [waiting] = await events_in(db, "error", 1, "err-")
    [done] = await events_in(db, "processed", 1, "done-")
    answer = await call(
        client,
        "POST",
        "/api/admin/events/replay",
        {"ids": [dead[0], waiting, done, 999_999, dead[0]]},
    )
    assert answer == {
        "requeued": sorted([dead[0], waiting]),
        "not_requeued": [
            {
                "id": done,
                "status": "processed",
                "reason": "status is processed; only dead_letter and error are replayed",
            },
            {"id": 999_999, "status": None, "reason": "no such event"},
        ],
    }
    rows = await db.fetch(
        "SELECT status, attempt_count, next_attempt_at <= now() AS due FROM inbound_events"
        " WHERE id = ANY($1)",
        [dead[0], waiting],
    )
    assert [tuple(r) for r in rows] == [("received", 0, True)] * 2
    everything = await call(client, "POST", "/api/admin/events/replay", {"all_dead": True})
    assert everything == {"requeued": [dead[1]], "not_requeued": []}
    again = await call(client, "POST", "/api/admin/events/replay", {"all_dead": True})
    assert again == {"requeued": [], "not_requeued": []}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "/all_dead"),
        ({"ids": [1], "all_dead": True}, "/ids"),
        ({"all_dead": False}, "/all_dead"),
        ({"all_dead": "yes"}, "/all_dead"),
        ({"ids": []}, "/ids"),
        ({"ids": "1"}, "/ids"),
        ({"ids": [1, True]}, "/ids/1"),
        ({"ids": [0]}, "/ids/0"),
        ({"ids": ["7"]}, "/ids/0"),
        ({"ids": [2**63]}, "/ids/0"),
    ],
)
async def test_a_replay_needs_exactly_one_of_ids_and_all_dead(
    client: Client, body: dict[str, Any], field: str
) -> None:
    problem = await call(client, "POST", "/api/admin/events/replay", body, status=400)
    assert [e["field"] for e in problem["errors"]] == [field]


async def test_purge_deletes_a_dead_letter_and_nothing_else(
    client: Client, db: asyncpg.Connection
) -> None:
    [dead] = await events_in(db, "dead_letter", 1, "dead-")
    [waiting] = await events_in(db, "error", 1, "err-")
    await call(client, "DELETE", f"/api/admin/events/{dead}", status=204)
    assert await db.fetchval("SELECT count(*) FROM inbound_events WHERE id = $1", dead) == 0
    problem = await call(client, "DELETE", f"/api/admin/events/{waiting}", status=409)
    assert problem["detail"] == (
        f"Event {waiting} is not a dead letter (status error): only dead letters are purged."
    )
    assert await db.fetchval("SELECT status FROM inbound_events WHERE id = $1", waiting) == "error"
    await call(client, "DELETE", f"/api/admin/events/{dead}", status=404)
    await call(client, "DELETE", "/api/admin/events/nope", status=404)
    await call(client, "DELETE", "/api/admin/events/" + "9" * 30, status=404)


# -- sends --------------------------------------------------------------------------------


async def test_failed_sends_are_listed_with_their_last_error_and_retried(
    client: Client, db: asyncpg.Connection
) -> None:
    failed = await sends_in(db, "failed", 3)
    [sent] = await sends_in(db, "sent", 1)
    page = await call(client, "GET", "/api/admin/sends?pageSize=2")
    assert page["meta"] == {"page": 1, "page_size": 2, "total": 3}
    assert [s["id"] for s in page["items"]] == failed[:2]
    item = page["items"][0]
    assert item == {
        "id": failed[0],
        "conversation_id": 1,
        "type": "sms",
        "from": "+12016661234",
        "to": "+18045551234",
        "status": "failed",
        "attempt_count": 5,
        "last_error": "provider answered 400",
        "provider_message_id": None,
        "queued_at": item["queued_at"],
        "next_attempt_at": item["next_attempt_at"],
    }
    await call(client, "GET", "/api/admin/sends?status=sent", status=400)

    retried = await call(client, "POST", f"/api/admin/sends/{failed[0]}/retry")
    assert (retried["id"], retried["status"], retried["attempt_count"]) == (failed[0], "queued", 0)
    row = await db.fetchrow(
        "SELECT status, delivery_attempts, next_attempt_at <= now() AS due, processor_id"
        " FROM messages WHERE id = $1",
        failed[0],
    )
    assert tuple(row) == ("queued", 0, True, None)
    # The change reaches the stream's log like every other.
    assert (
        await db.fetchval(
            "SELECT status FROM stream_events WHERE message_id = $1 ORDER BY id DESC LIMIT 1",
            failed[0],
        )
        == "queued"
    )
    conflict = await call(client, "POST", f"/api/admin/sends/{failed[0]}/retry", status=409)
    assert conflict["detail"] == (
        f"Send {failed[0]} has not failed (status queued): only failed sends are retried."
    )
    await call(client, "POST", f"/api/admin/sends/{sent}/retry", status=409)
    await call(client, "POST", "/api/admin/sends/999999/retry", status=404)
    assert (await call(client, "GET", "/api/admin/sends"))["meta"]["total"] == 2


async def test_an_inbound_message_is_no_send_to_retry(
    client: Client, db: asyncpg.Connection, make_worker: MakeWorker
) -> None:
    await insert_sms(db, 1)
    await (await make_worker(start=False)).inbound.drain()
    inbound = await db.fetchval("SELECT id FROM messages WHERE direction = 'inbound'")
    await call(client, "POST", f"/api/admin/sends/{inbound}/retry", status=404)


@pytest.fixture
async def service(
    aiohttp_server: ServerFactory, settings: Settings, db: asyncpg.Connection
) -> AsyncIterator[Service]:
    # One attempt, a provider timeout far shorter than the mock's hang.
    server = await serve_on_own_port(
        aiohttp_server,
        settings.replace(
            mock_seed=1, max_retries=1, provider_timeout_ms=300, sweep_interval_ms=100
        ),
        worker=True,
    )
    async with aiohttp.ClientSession() as session:
        yield Service(server, session, db)


async def test_a_send_the_provider_took_before_it_failed_is_retried_without_a_second_delivery(
    service: Service,
) -> None:
    # The provider takes the message and holds its answer past our timeout: the
    # one attempt fails, though the provider has it.
    await service.mock_config("sms", script=["hang"], hang_secs=5)
    message_id = await service.send(SMS_SEND)
    row = await service.wait_for(message_id, "failed", within=5)
    assert row["last_error"] == "gave up after 1 attempts: sms provider did not answer in time"
    assert (await service.deliveries("sms"))["accepted"] == 1

    async with service.session.post(service.url(f"/api/admin/sends/{message_id}/retry")) as r:
        assert r.status == 200, await r.text()
    row = await service.wait_for(message_id, "sent", within=5)
    seen = await service.deliveries("sms")
    [delivery] = seen["deliveries"]
    assert (seen["accepted"], delivery["requests"]) == (1, 2)
    assert delivery["idempotency_key"] == f"msg-{message_id}"
    assert [e["answer"] for e in seen["log"]] == ["hang", "repeat"]
    assert {e["idempotency_key"] for e in seen["log"]} == {f"msg-{message_id}"}
    assert row["provider_message_id"] == delivery["provider_message_id"]
    assert row["delivery_attempts"] == 1


# -- the admin scope ----------------------------------------------------------------------


@pytest.fixture
async def keyed(aiohttp_client: Any, settings: Settings) -> MakeClient:
    async def make() -> Client:
        client: Client = await aiohttp_client(init_app(settings.replace(api_auth="keys")))
        return client

    return make


async def test_admin_routes_need_a_key_with_the_admin_scope(
    keyed: MakeClient, db: asyncpg.Connection
) -> None:
    reader = await api_key(db, "reader", "read", "send")
    operator = await api_key(db, "operator", "admin")
    client = await keyed()
    for method, path, body in ADMIN_ROUTES:
        await call(client, method, path, body, status=401)
        problem = await call(
            client, method, path, body, status=403, headers={"Authorization": f"Bearer {reader}"}
        )
        assert "'admin'" in problem["detail"]
        response = await client.request(
            method, path, json=body, headers={"Authorization": f"Bearer {operator}"}
        )
        # Let in: the answer is the route's own (no event or send 1 here).
        assert response.status in (200, 404), (method, path, await response.text())
    assert "processes" in await call(
        client, "GET", "/api/admin/queues", headers={"Authorization": f"Bearer {operator}"}
    )


# -- plans on a filled table --------------------------------------------------------------


def rows_read(plan: dict[str, Any], tables: tuple[str, ...]) -> list[tuple[str, str, int]]:
    """(node type, relation, rows read) of every scan of `tables` that ran in an
    EXPLAIN ANALYZE plan: the rows it answered and those its filters dropped."""
    found = []
    if plan.get("Relation Name") in tables:
        loops = plan["Actual Loops"]
        read = plan["Actual Rows"] + plan.get("Rows Removed by Filter", 0)
        read += plan.get("Rows Removed by Index Recheck", 0)
        found.append((plan["Node Type"], plan["Relation Name"], round(read * loops)))
    for child in plan.get("Plans", []):
        found += rows_read(child, tables)
    return found


async def test_the_operators_counts_and_lists_stay_off_the_big_tables(
    db: asyncpg.Connection,
) -> None:
    """Run as the plan PostgreSQL may cache for a prepared statement after five
    runs (one made without the parameters' values), on 20,000 processed events
    and sent messages: every count and list reads a handful of rows."""
    await insert_sms(db, 20_000, prefix="old-")
    await db.execute("UPDATE inbound_events SET status = 'processed'")
    await events_in(db, "dead_letter", 5, "dead-")
    await events_in(db, "error", 5, "err-")
    await sends_in(db, "failed", 5)
    await db.execute(
        """INSERT INTO messages (conversation_id, direction, message_type, from_address,
                                 to_address, body, sent_at, status, provider_message_id)
           SELECT 1, 'outbound', 'sms', '+12016661234', '+18045551234', 'old', now(), 'sent', 'p'
           FROM generate_series(1, 20000)"""
    )
    await db.execute("VACUUM ANALYZE inbound_events")
    await db.execute("VACUUM ANALYZE messages")
    cases = [
        ("inbound_events.sql", "list_events", "text, bigint, bigint", "('dead_letter', 50, 0)"),
        ("inbound_events.sql", "list_events", "text, bigint, bigint", "('error', 50, 0)"),
        ("inbound_events.sql", "count_events", "text", "('dead_letter')"),
        ("inbound_events.sql", "count_events", "text", "('error')"),
        ("inbound_events.sql", "status_counts", "", ""),
        ("inbound_events.sql", "queue_stats", "", ""),
        ("messages.sql", "send_counts", "", ""),
        ("messages.sql", "list_failed_sends", "bigint, bigint", "(50, 0)"),
    ]
    await db.execute("SET plan_cache_mode = force_generic_plan")
    for i, (file, name, types, args) in enumerate(cases):
        sql = query(file, name)
        await db.execute(f"PREPARE q{i}({types}) AS {sql}" if types else f"PREPARE q{i} AS {sql}")
        plan = await db.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE q{i}{args}")
        found = rows_read(json.loads(plan)[0]["Plan"], ("inbound_events", "messages"))
        assert found, (name, args, plan)
        assert sum(read for _, _, read in found) <= 50, (name, args, found)
    await db.execute("RESET plan_cache_mode")
