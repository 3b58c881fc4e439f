"""The clients' flow of api.md, replayed through the real HTTP stack against a
fresh database, with the worker running and the mock providers mounted in the
app: three sends and three webhooks, then the two reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import pytest

from messaging.config import Settings
from tests.support.aliases import ServerFactory
from tests.support.payloads import EMAIL_SEND as EMAIL
from tests.support.payloads import EMAIL_WEBHOOK as INBOUND_EMAIL
from tests.support.payloads import MMS_SEND as MMS
from tests.support.payloads import MMS_WEBHOOK as INBOUND_MMS
from tests.support.payloads import SMS_SEND as SMS
from tests.support.payloads import SMS_WEBHOOK as INBOUND_SMS
from tests.support.service import Service, serve_on_own_port
from tests.support.waiting import wait_until

POSTS = [
    ("/api/messages/sms", SMS),
    ("/api/messages/sms", MMS),
    ("/api/messages/email", EMAIL),
    ("/api/webhooks/sms", INBOUND_SMS),
    ("/api/webhooks/sms", INBOUND_MMS),
    ("/api/webhooks/email", INBOUND_EMAIL),
]


@pytest.fixture
async def service(
    aiohttp_server: ServerFactory, settings: Settings, db: asyncpg.Connection
) -> AsyncIterator[Service]:
    server = await serve_on_own_port(aiohttp_server, settings, worker=True)
    async with aiohttp.ClientSession() as session:
        yield Service(server, session, db)


def message(direction: str, kind: str, body: dict[str, Any], status: str) -> dict[str, Any]:
    return {
        "direction": direction,
        "type": kind,
        "from": body["from"],
        "to": body["to"],
        "conversation_id": 1,
        "body": body["body"],
        "body_truncated": False,
        "attachments": body["attachments"] or [],
        "timestamp": "2024-11-01T14:00:00Z",
        "status": status,
    }


async def test_the_six_posts_then_the_two_reads(service: Service) -> None:
    sent = []
    for path, body in POSTS:
        status, answer = await service.post(path, body)
        assert status == 202, answer
        if path.startswith("/api/messages/"):
            assert answer["status"] == "queued"
            sent.append(answer["id"])
    # The SMS send came first, so its conversation is number 1; the MMS shares it.
    assert sorted(sent) == [1, 2, 3]

    # The three sends reach sent (how soon is measured by bench/, not here).
    for message_id in sent:
        await service.wait_for(message_id, "sent", within=5)
    await wait_until(lambda: service.db.fetchval("SELECT count(*) = 6 FROM messages"), within=2)

    conversations = await service.get("/api/conversations")
    assert conversations["meta"] == {"page": 1, "page_size": 50, "total": 2}
    # Same last activity: the higher id first.
    assert [(c["id"], c["channel"], c["message_count"]) for c in conversations["items"]] == [
        (2, "email", 2),
        (1, "sms", 4),
    ]
    sms = conversations["items"][1]
    assert sms["participants"] == ["+12016661234", "+18045551234"]
    assert sms["last_activity_at"] == "2024-11-01T14:00:00Z"
    assert conversations["items"][0]["participants"] == [
        "contact@gmail.com",
        "user@usehatchapp.com",
    ]

    messages = await service.get("/api/conversations/1/messages")
    assert messages["meta"] == {"page": 1, "page_size": 50, "total": 4}
    # Oldest first; all four carry the same timestamp, so by id: the sends were
    # stored by their requests, the webhooks' messages by the worker after them.
    assert [{k: v for k, v in m.items() if k != "id"} for m in messages["items"]] == [
        message("outbound", "sms", SMS, "sent"),
        message("outbound", "mms", MMS, "sent"),
        message("inbound", "sms", INBOUND_SMS, "received"),
        message("inbound", "mms", INBOUND_MMS, "received"),
    ]
    ids = [m["id"] for m in messages["items"]]
    assert ids[:2] == [1, 2] and ids == sorted(ids)

    email = await service.get("/api/conversations/2/messages")
    assert [(m["direction"], m["type"], m["status"]) for m in email["items"]] == [
        ("outbound", "email", "sent"),
        ("inbound", "email", "received"),
    ]
    # Each send reached its provider once.
    assert (await service.deliveries("sms"))["accepted"] == 2
    assert (await service.deliveries("email"))["accepted"] == 1
