"""Sends through the real HTTP stack into a real PostgreSQL: the message stored
queued in its conversation, answered 202 after the commit; Idempotency-Key.
Delivery is tested in test_delivery.py."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from messaging.app import init_app
from messaging.config import Settings
from tests.support.aliases import Client, MakeWorker
from tests.support.metrics import scrape
from tests.support.outage import DatabaseOutage
from tests.support.payloads import EMAIL_SEND as EMAIL
from tests.support.payloads import EMAIL_WEBHOOK, SMS_WEBHOOK
from tests.support.payloads import MMS_SEND as MMS
from tests.support.payloads import SMS_SEND as SMS

# A minute after the sends.
INBOUND_SMS = {**SMS_WEBHOOK, "timestamp": "2024-11-01T14:01:00Z"}


async def send(
    client: Client, body: dict[str, Any], key: str | None = None, status: int = 202
) -> dict[str, Any]:
    path = "/api/messages/email" if "type" not in body else "/api/messages/sms"
    headers = {"Idempotency-Key": key} if key is not None else {}
    response = await client.post(path, json=body, headers=headers)
    assert response.status == status, await response.text()
    answer: dict[str, Any] = await response.json(content_type=None)
    answer["replayed"] = response.headers.get("Idempotent-Replayed")
    return answer


async def messages(db: asyncpg.Connection) -> list[asyncpg.Record]:
    return await db.fetch("SELECT * FROM messages ORDER BY id")


async def test_a_send_is_stored_queued_in_conversation_1_and_answered_202(
    client: Client, db: asyncpg.Connection
) -> None:
    answer = await send(client, SMS)
    assert answer == {"id": 1, "status": "queued", "conversation_id": 1, "replayed": None}
    [row] = await messages(db)
    assert (row["direction"], row["status"], row["message_type"]) == ("outbound", "queued", "sms")
    assert (row["from_address"], row["to_address"], row["body"]) == (
        "+12016661234",
        "+18045551234",
        "Hello! This is a test SMS message.",
    )
    assert row["attachments"] == "[]"
    assert row["sent_at"] == datetime(2024, 11, 1, 14, tzinfo=UTC)
    assert (row["delivery_attempts"], row["processor_id"]) == (0, None)
    assert row["next_attempt_at"] <= await db.fetchval("SELECT now()")
    conv = await db.fetchrow("SELECT * FROM conversations")
    assert (conv["id"], conv["kind"], conv["message_count"]) == (1, "sms", 1)
    assert (conv["participant_a"], conv["participant_b"]) == ("+12016661234", "+18045551234")
    assert conv["last_activity_at"] == row["sent_at"]


async def test_sms_and_mms_share_a_conversation_email_has_its_own(
    client: Client, db: asyncpg.Connection
) -> None:
    for _ in range(3):
        assert (await send(client, SMS))["conversation_id"] == 1
    assert (await send(client, MMS))["conversation_id"] == 1
    # Three sends into an existing conversation drew no identity values.
    assert (await send(client, EMAIL))["conversation_id"] == 2
    counts = await db.fetch("SELECT id, kind, message_count FROM conversations ORDER BY id")
    assert [tuple(r) for r in counts] == [(1, "sms", 4), (2, "email", 1)]
    mms = (await messages(db))[3]
    assert (mms["message_type"], mms["attachments"]) == ("mms", '["https://example.com/image.jpg"]')
    # Last activity is the latest timestamp, not the last send's.
    await send(client, {**EMAIL, "timestamp": "2024-11-01T15:00:00Z"})
    await send(client, {**EMAIL, "timestamp": "2024-11-01T14:00:00+02:00"})  # 12:00Z
    email = await db.fetchrow("SELECT * FROM conversations WHERE id = 2")
    assert email["message_count"] == 3
    assert email["last_activity_at"] == datetime(2024, 11, 1, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("outbound", "inbound"),
    [
        # Formatting of phone numbers: all of these are +12016661234 / +18045551234.
        (
            {**SMS, "from": "(201) 666-1234", "to": "804.555.1234"},
            {**INBOUND_SMS, "from": "+1 804 555 1234", "to": "001-201-666-1234"},
        ),
        # Case of email addresses, and a display name.
        (
            {**EMAIL, "from": "User@UseHatchApp.com", "to": "Contact <CONTACT@gmail.com>"},
            {
                **EMAIL_WEBHOOK,
                "from": "contact@GMAIL.com",
                "to": "user@usehatchapp.COM",
                "body": "<p>Hi</p>",
                "attachments": None,
                "timestamp": "2024-11-01T14:01:00Z",
            },
        ),
    ],
    ids=["phone-formatting", "email-case"],
)
async def test_outbound_and_inbound_between_the_same_two_share_a_conversation(
    client: Client,
    db: asyncpg.Connection,
    make_worker: MakeWorker,
    outbound: dict[str, Any],
    inbound: dict[str, Any],
) -> None:
    worker = await make_worker(start=False)
    sent = await send(client, outbound)
    webhook = "/api/webhooks/email" if "xillio_id" in inbound else "/api/webhooks/sms"
    assert (await client.post(webhook, json=inbound)).status == 202
    assert await worker.inbound.drain() == 1
    rows = await db.fetch("SELECT direction, conversation_id FROM messages ORDER BY id")
    assert [tuple(r) for r in rows] == [
        ("outbound", sent["conversation_id"]),
        ("inbound", sent["conversation_id"]),
    ]
    conv = await db.fetchrow("SELECT * FROM conversations")
    assert conv["message_count"] == 2
    assert conv["last_activity_at"] == datetime(2024, 11, 1, 14, 1, tzinfo=UTC)


async def test_sends_notify_the_delivery_loops_at_commit_inbound_messages_do_not(
    client: Client, database_url: str, db: asyncpg.Connection, make_worker: MakeWorker
) -> None:
    worker = await make_worker(start=False)
    listener = await asyncpg.connect(database_url)
    received: asyncio.Queue[str] = asyncio.Queue()
    await listener.add_listener("outbound_messages", lambda *args: received.put_nowait(args[3]))
    try:
        await send(client, SMS)
        assert await asyncio.wait_for(received.get(), timeout=5) == ""
        assert (await client.post("/api/webhooks/sms", json=INBOUND_SMS)).status == 202
        assert await worker.inbound.drain() == 1
        # Notifications arrive in commit order: had the inbound message's commit
        # notified, that would come before this marker, committed after it.
        await db.execute("SELECT pg_notify('outbound_messages', 'marker')")
        assert await asyncio.wait_for(received.get(), timeout=5) == "marker"
        assert received.empty()
    finally:
        await listener.close()


# -- Idempotency-Key ------------------------------------------------------------------


async def test_a_repeated_key_and_request_answers_the_same_and_stores_nothing(
    client: Client, db: asyncpg.Connection
) -> None:
    first = await send(client, SMS, key="order-17")
    again = await send(client, SMS, key="order-17")
    assert first == {"id": 1, "status": "queued", "conversation_id": 1, "replayed": None}
    assert again == {**first, "replayed": "true"}
    assert len(await messages(db)) == 1
    assert await db.fetchval("SELECT message_count FROM conversations") == 1
    key = await db.fetchrow("SELECT * FROM idempotency_keys")
    assert (key["key"], key["endpoint"], key["message_id"]) == ("order-17", "sms", 1)
    # Without a key, or with another one, a send is a new message.
    assert (await send(client, SMS))["id"] == 2
    assert (await send(client, SMS, key="order-18"))["id"] == 3
    # The same request written differently (key order, number formatting, the
    # timestamp's offset) is a repeat.
    reordered = {**dict(reversed(list(SMS.items()))), "from": "+1 (201) 666-1234"}
    written = {**reordered, "timestamp": "2024-11-01T16:00:00+02:00"}
    assert await send(client, written, key="order-17") == again
    samples = await scrape(client)
    name = "messaging_send_requests_total"
    assert samples.value(name, channel="sms", outcome="queued") == 3
    assert samples.value(name, channel="sms", outcome="replayed") == 2


async def test_the_key_with_another_request_is_422_and_stores_nothing(
    client: Client, db: asyncpg.Connection
) -> None:
    others = {
        "body": {**SMS, "body": "Another body"},
        "to": {**SMS, "to": "+18045550000"},
        "timestamp": {**SMS, "timestamp": "2024-11-01T14:00:01Z"},
        "type": MMS,
        "route": EMAIL,  # the key on the other route
    }
    for what, other in others.items():
        await send(client, SMS, key=what)
        problem = await send(client, other, key=what, status=422)
        assert problem["status"] == 422, what
        assert problem["errors"] == [
            {"field": "Idempotency-Key", "message": "names an earlier send with another request"}
        ]
    assert len(await messages(db)) == len(others)
    assert await db.fetchval("SELECT count(*) FROM conversations") == 1
    samples = await scrape(client)
    assert samples.value("messaging_send_requests_total", channel="sms", outcome="conflict") == 4


async def test_identical_requests_racing_make_one_message(
    client: Client, db: asyncpg.Connection
) -> None:
    answers = await asyncio.gather(*(send(client, SMS, key="race") for _ in range(20)))
    assert {a["id"] for a in answers} == {1}
    assert sorted(a["replayed"] or "" for a in answers) == [""] + ["true"] * 19
    assert len(await messages(db)) == 1
    assert await db.fetchval("SELECT message_count FROM conversations") == 1


async def test_different_requests_racing_on_one_key_one_wins(
    client: Client, db: asyncpg.Connection
) -> None:
    bodies = [{**SMS, "body": f"variant {i}"} for i in range(10)]
    responses = await asyncio.gather(
        *(
            client.post("/api/messages/sms", json=b, headers={"Idempotency-Key": "contested"})
            for b in bodies
        )
    )
    assert sorted(r.status for r in responses) == [202] + [422] * 9
    [row] = await messages(db)
    winner = next(b for b, r in zip(bodies, responses, strict=True) if r.status == 202)
    assert row["body"] == winner["body"]


async def test_a_key_survives_an_app_restart(
    aiohttp_client: Any, settings: Settings, db: asyncpg.Connection
) -> None:
    first = await aiohttp_client(init_app(settings))
    stored = await send(first, EMAIL, key="restart")
    await first.close()
    second = await aiohttp_client(init_app(settings))
    assert await send(second, EMAIL, key="restart") == {**stored, "replayed": "true"}
    await send(second, {**EMAIL, "body": "changed"}, key="restart", status=422)
    assert len(await messages(db)) == 1


async def test_a_bad_key_is_400_and_stores_nothing_the_longest_is_taken(
    client: Client, db: asyncpg.Connection
) -> None:
    for key in ("x" * 257, "", "tab\tinside"):
        response = await client.post(
            "/api/messages/sms", json=SMS, headers={"Idempotency-Key": key}
        )
        assert response.status == 400, key
        problem = await response.json(content_type="application/problem+json")
        assert [e["field"] for e in problem["errors"]] == ["Idempotency-Key"]
    assert await messages(db) == []
    await send(client, SMS, key="k" * 256)
    assert (await send(client, SMS, key="k" * 256))["replayed"] == "true"


# -- refusals ---------------------------------------------------------------------------


async def test_invalid_sends_are_4xx_and_store_nothing(
    client: Client, db: asyncpg.Connection
) -> None:
    # The rules themselves are unit-tested (tests/unit/test_sends.py).
    for path, body, field in [
        ("/api/messages/sms", {**SMS, "type": "fax"}, "/type"),
        ("/api/messages/sms", {**MMS, "attachments": []}, "/attachments"),
        ("/api/messages/email", {**EMAIL, "body": " "}, "/body"),
        ("/api/messages/email", {**EMAIL, "to": "not an address"}, "/to"),
    ]:
        response = await client.post(path, json=body, headers={"Idempotency-Key": field})
        assert response.status == 400
        problem = await response.json(content_type="application/problem+json")
        assert field in [e["field"] for e in problem["errors"]]
    response = await client.post(
        "/api/messages/sms", data="from=x", headers={"Content-Type": "text/plain"}
    )
    assert response.status == 415
    assert await messages(db) == []
    assert await db.fetchval("SELECT count(*) FROM conversations") == 0
    assert await db.fetchval("SELECT count(*) FROM idempotency_keys") == 0


async def test_database_down_is_503_never_202(
    client: Client, database_outage: DatabaseOutage
) -> None:
    assert (await send(client, SMS))["id"] == 1
    async with database_outage:
        response = await client.post(
            "/api/messages/sms", json=SMS, headers={"Idempotency-Key": "o"}
        )
        assert response.status == 503
        assert response.headers["Retry-After"]
    # Nothing was stored: the key is free, and the next send is message 2.
    assert await send(client, SMS, key="o") == {
        "id": 2,
        "status": "queued",
        "conversation_id": 1,
        "replayed": None,
    }
