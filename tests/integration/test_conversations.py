"""GET /api/conversations and GET /api/conversations/{id}/messages through the real
HTTP stack, on data arranged with direct SQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from tests.support.aliases import Client, MakeWorker
from tests.support.arrange import conversation, insert_sms, message
from tests.support.payloads import SMS_SEND

T0 = datetime(2024, 11, 1, 14, 0, tzinfo=UTC)


async def get(client: Client, path: str, status: int = 200) -> dict[str, Any]:
    response = await client.get(path)
    assert response.status == status, await response.text()
    body: dict[str, Any] = await response.json(content_type=None)
    return body


async def fill_conversations(db: asyncpg.Connection, n: int) -> None:
    await db.execute(
        "INSERT INTO conversations (kind, participant_a, participant_b, last_activity_at)"
        " SELECT 'sms', '+1201666' || lpad(i::text, 4, '0'), '+18045551234',"
        "        $2::timestamptz + i * interval '1 minute'"
        " FROM generate_series(1, $1) AS i",
        n,
        T0,
    )


async def fill_messages(db: asyncpg.Connection, conversation_id: int, n: int) -> None:
    await db.execute(
        "WITH m AS (INSERT INTO messages (conversation_id, direction, message_type,"
        "   from_address, to_address, body, sent_at, status)"
        " SELECT $1, 'outbound', 'sms', '+12016661234', '+18045551234', 'm' || i,"
        "        $3::timestamptz + i * interval '1 second', 'queued'"
        " FROM generate_series(1, $2) AS i RETURNING sent_at)"
        " UPDATE conversations SET message_count = message_count + (SELECT count(*) FROM m),"
        "   last_activity_at = (SELECT max(sent_at) FROM m) WHERE id = $1",
        conversation_id,
        n,
        T0,
    )


async def test_empty_lists(client: Client) -> None:
    body = await get(client, "/api/conversations")
    assert body == {"items": [], "meta": {"page": 1, "page_size": 50, "total": 0}}


async def test_conversation_item_and_its_messages(client: Client, db: asyncpg.Connection) -> None:
    sms = await conversation(db, "sms", "+18045551234", "+12016661234")
    await message(db, sms, sent_at=T0, body="Hello! This is a test SMS message.")
    await message(
        db,
        sms,
        sent_at=T0 + timedelta(minutes=1),
        direction="inbound",
        message_type="mms",
        from_address="+18045551234",
        to_address="+12016661234",
        body="This is an incoming MMS message",
        attachments=["https://example.com/received-image.jpg"],
    )
    email = await conversation(db, "email", "user@usehatchapp.com", "contact@gmail.com")
    await message(
        db,
        email,
        sent_at=T0 + timedelta(seconds=30),
        direction="inbound",
        message_type="email",
        from_address="contact@gmail.com",
        to_address="user@usehatchapp.com",
        body="<html><body>This is an incoming email with <b>HTML</b>\n content &amp; more</body></html>",
    )

    listing = await get(client, "/api/conversations")
    assert listing["meta"] == {"page": 1, "page_size": 50, "total": 2}
    assert listing["items"] == [
        {
            "id": sms,
            "channel": "sms",
            "participants": ["+12016661234", "+18045551234"],
            "message_count": 2,
            "last_activity_at": "2024-11-01T14:01:00Z",
            "last_message": {
                "id": listing["items"][0]["last_message"]["id"],
                "direction": "inbound",
                "type": "mms",
                "from": "+18045551234",
                "to": "+12016661234",
                "preview": "This is an incoming MMS message",
                "timestamp": "2024-11-01T14:01:00Z",
            },
        },
        {
            "id": email,
            "channel": "email",
            "participants": ["contact@gmail.com", "user@usehatchapp.com"],
            "message_count": 1,
            "last_activity_at": "2024-11-01T14:00:30Z",
            "last_message": {
                "id": listing["items"][1]["last_message"]["id"],
                "direction": "inbound",
                "type": "email",
                "from": "contact@gmail.com",
                "to": "user@usehatchapp.com",
                "preview": "This is an incoming email with HTML content & more",
                "timestamp": "2024-11-01T14:00:30Z",
            },
        },
    ]

    messages = await get(client, f"/api/conversations/{sms}/messages")
    assert messages["meta"] == {"page": 1, "page_size": 50, "total": 2}
    first, second = messages["items"]
    assert first == {
        "id": first["id"],
        "direction": "outbound",
        "type": "sms",
        "from": "+12016661234",
        "to": "+18045551234",
        "conversation_id": sms,
        "body": "Hello! This is a test SMS message.",
        "body_truncated": False,
        "attachments": [],
        "timestamp": "2024-11-01T14:00:00Z",
        "status": "queued",
    }
    assert (second["type"], second["status"]) == ("mms", "received")
    assert second["attachments"] == ["https://example.com/received-image.jpg"]


async def test_conversations_newest_activity_first_ties_by_id(
    client: Client, db: asyncpg.Connection
) -> None:
    ids = [await conversation(db, "sms", "+12016661234", f"+1804555000{i}") for i in range(4)]
    # ids[1] and ids[3] tie on the newest activity: the higher id comes first.
    for cid, minutes in zip(ids, (1, 5, 3, 5), strict=True):
        await message(db, cid, sent_at=T0 + timedelta(minutes=minutes))
    body = await get(client, "/api/conversations")
    assert [c["id"] for c in body["items"]] == [ids[3], ids[1], ids[2], ids[0]]


async def test_messages_oldest_first_stable_by_id(client: Client, db: asyncpg.Connection) -> None:
    cid = await conversation(db, "sms", "+12016661234", "+18045551234")
    late = await message(db, cid, sent_at=T0 + timedelta(minutes=2), body="late")
    tie_a = await message(db, cid, sent_at=T0, body="tie a")
    tie_b = await message(db, cid, sent_at=T0, body="tie b")
    body = await get(client, f"/api/conversations/{cid}/messages")
    assert [m["id"] for m in body["items"]] == [tie_a, tie_b, late]
    # The conversation's preview is its newest message, not its last inserted one.
    listing = await get(client, "/api/conversations")
    assert listing["items"][0]["last_message"]["id"] == late


MESSAGE_PAGES = [
    # query, page, page_size, items on the page
    ("", 1, 50, 50),
    ("?pageSize=0", 1, 50, 50),
    ("?pageSize=7&page=2", 2, 7, 7),
    ("?pageSize=1000", 1, 200, 200),
    ("?page=3&pageSize=100", 3, 100, 50),
    ("?page=4&pageSize=100", 4, 100, 0),
    ("?page=999999999", 999999999, 50, 0),
]


async def test_message_pages(client: Client, db: asyncpg.Connection) -> None:
    cid = await conversation(db, "sms", "+12016661234", "+18045551234")
    await fill_messages(db, cid, 250)
    for query, page, page_size, count in MESSAGE_PAGES:
        body = await get(client, f"/api/conversations/{cid}/messages{query}")
        assert body["meta"] == {"page": page, "page_size": page_size, "total": 250}, query
        first = (page - 1) * page_size + 1
        assert [m["body"] for m in body["items"]] == [
            f"m{i}" for i in range(first, first + count)
        ], query


async def test_conversation_pages(client: Client, db: asyncpg.Connection) -> None:
    await fill_conversations(db, 60)
    first = await get(client, "/api/conversations?pageSize=0")
    assert (len(first["items"]), first["meta"]["total"]) == (50, 60)
    second = await get(client, "/api/conversations?page=2")
    assert len(second["items"]) == 10
    ids = [c["id"] for c in first["items"] + second["items"]]
    assert ids == list(range(60, 0, -1))
    past = await get(client, "/api/conversations?page=3")
    assert past == {"items": [], "meta": {"page": 3, "page_size": 50, "total": 60}}


BAD_PAGES = [
    ("?page=0", {"page"}),
    ("?page=-1", {"page"}),
    ("?page=abc", {"page"}),
    ("?page=", {"page"}),
    ("?page=1.5", {"page"}),
    ("?page=%EF%BC%91", {"page"}),  # a full-width digit one
    ("?page=1000000001", {"page"}),
    ("?pageSize=-1", {"pageSize"}),
    ("?pageSize=ten&page=x", {"page", "pageSize"}),
]


async def test_bad_page_parameters_are_400(client: Client, db: asyncpg.Connection) -> None:
    cid = await conversation(db, "sms", "+12016661234", "+18045551234")
    for query, fields in BAD_PAGES:
        for path in ("/api/conversations", f"/api/conversations/{cid}/messages"):
            response = await client.get(path + query)
            assert response.status == 400, (path, query)
            assert response.content_type == "application/problem+json"
            body = await response.json(content_type=None)
            assert {e["field"] for e in body["errors"]} == fields, (path, query)


async def test_unknown_conversation_is_404(client: Client) -> None:
    for cid in ["12345", "0", "abc", "99999999999999999999", "-1"]:
        response = await client.get(f"/api/conversations/{cid}/messages")
        assert response.status == 404, cid
        assert response.content_type == "application/problem+json"


async def test_an_empty_conversation_has_no_messages(
    client: Client, db: asyncpg.Connection
) -> None:
    cid = await conversation(db, "email", "a@example.com", "b@example.com")
    body = await get(client, f"/api/conversations/{cid}/messages")
    assert body == {"items": [], "meta": {"page": 1, "page_size": 50, "total": 0}}
    listing = await get(client, "/api/conversations")
    assert listing["items"][0]["last_message"] is None


def scans(plan: dict[str, Any], under_count: bool = False) -> list[tuple[str, str, bool]]:
    """(node type, relation, whether it feeds a plain count) of every scan in a plan."""
    node_type = plan["Node Type"]
    found = []
    if "Relation Name" in plan:
        found.append((node_type, plan["Relation Name"], under_count))
    counting = node_type == "Aggregate" and plan.get("Strategy") == "Plain"
    for child in plan.get("Plans", []):
        found += scans(child, under_count or counting)
    return found


async def test_both_lists_stay_on_indexes_with_100k_messages(db: asyncpg.Connection) -> None:
    from messaging.store.queries import query

    # 10,000 conversations of 10 messages: enough rows that a sequential scan
    # would be the planner's choice for any query that cannot use an index.
    await db.execute(
        "INSERT INTO conversations (kind, participant_a, participant_b, message_count, last_activity_at)"
        " SELECT 'sms', '+1201' || lpad(i::text, 7, '0'), '+18045551234', 10,"
        "        $1::timestamptz + (i % 5000) * interval '1 minute'"
        " FROM generate_series(1, 10000) AS i",
        T0,
    )
    await db.execute(
        "INSERT INTO messages (conversation_id, direction, message_type, from_address,"
        "   to_address, body, sent_at, status)"
        " SELECT c.id, 'outbound', 'sms', c.participant_a, c.participant_b, 'body ' || j,"
        "        c.last_activity_at - (j % 4) * interval '1 second', 'queued'"
        " FROM conversations AS c, generate_series(1, 10) AS j"
    )
    assert await db.fetchval("SELECT count(*) FROM messages") == 100_000
    await db.execute("ANALYZE conversations")
    await db.execute("ANALYZE messages")

    cases = [
        ("list_conversations", (50, 0)),
        ("list_conversations", (200, 5000)),
        ("list_messages", (5000, 50, 0, 4000)),
        ("list_messages", (5000, 200, 5, 4000)),
    ]
    for name, args in cases:
        sql = query("messages.sql" if name == "list_messages" else "conversations.sql", name)
        plan = await db.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
        found = scans(json.loads(plan)[0]["Plan"])
        sequential = [(rel, counting) for node, rel, counting in found if node == "Seq Scan"]
        # The one sequential scan allowed is the total of the conversation list:
        # the sum of conversation_counts' few rows.
        allowed = [("conversation_counts", True)] if name == "list_conversations" else []
        assert sequential == allowed, (name, args, found)
        assert any(rel == "messages" for _, rel, _ in found), (name, found)


async def test_the_total_is_counted_without_counting_the_table_and_stays_exact(
    client: Client, db: asyncpg.Connection, make_worker: MakeWorker
) -> None:
    # Conversations made by SQL, by a send, and by the worker's batches: each
    # INSERT adds a row to conversation_counts, which the sweep folds into one.
    await fill_conversations(db, 30)
    assert (await client.post("/api/messages/sms", json=SMS_SEND)).status == 202
    worker = await make_worker(start=False)
    await insert_sms(db, 40, pairs=20)
    assert await worker.inbound.drain() == 40
    expected = await db.fetchval("SELECT count(*) FROM conversations")
    assert await db.fetchval("SELECT count(*) FROM conversation_counts") > 2
    assert (await get(client, "/api/conversations"))["meta"]["total"] == expected

    result = await worker.sweeper.sweep_once()

    assert result.counts_folded > 2
    assert await db.fetchval("SELECT count(*) FROM conversation_counts") == 1
    assert (await get(client, "/api/conversations"))["meta"]["total"] == expected
    assert (await worker.sweeper.sweep_once()).counts_folded == 0  # one row: nothing to fold
