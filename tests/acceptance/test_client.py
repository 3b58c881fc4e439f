"""messaging.client against the real service over real HTTP, on a fresh database:
api.md's flow through it, lists walked to their end, sends retried through a
real proxy that loses answers and says 429 and 503, and API keys."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestServer

from messaging.client import (
    BadRequest,
    Conversation,
    FieldProblem,
    Forbidden,
    LastMessage,
    Message,
    MessagingClient,
    NotFound,
    SendAccepted,
    Unauthorized,
    Unavailable,
)
from messaging.config import Settings
from tests.support import arrange
from tests.support.aliases import ServerFactory
from tests.support.http_proxy import Answer, LoseAnswer, ScriptedProxy
from tests.support.payloads import (
    EMAIL_SEND,
    EMAIL_WEBHOOK,
    MMS_SEND,
    MMS_WEBHOOK,
    SMS_SEND,
    SMS_WEBHOOK,
)
from tests.support.service import Service, serve_on_own_port
from tests.support.waiting import wait_until

T0 = datetime(2024, 11, 1, 14, tzinfo=UTC)
SMS_PATH = "/api/messages/sms"


def base_url(server: TestServer) -> str:
    return f"http://127.0.0.1:{server.port}"


def sms(payload: dict[str, Any] = SMS_SEND, **changes: Any) -> dict[str, Any]:
    """send_sms's arguments for a payload of api.md."""
    return {
        "from_": payload["from"],
        "to": payload["to"],
        "type": payload["type"],
        "body": payload["body"],
        "attachments": payload["attachments"],
        "timestamp": payload["timestamp"],
        **changes,
    }


@pytest.fixture
async def server(aiohttp_server: ServerFactory, settings: Settings) -> TestServer:
    return await serve_on_own_port(aiohttp_server, settings)


@pytest.fixture
async def proxy(server: TestServer) -> AsyncIterator[ScriptedProxy]:
    async with ScriptedProxy(base_url(server)).running() as proxy:
        yield proxy


async def test_the_clients_flow_through_the_client(
    aiohttp_server: ServerFactory, settings: Settings, db: asyncpg.Connection
) -> None:
    server = await serve_on_own_port(aiohttp_server, settings, worker=True)
    base = base_url(server)
    async with MessagingClient(base) as client:
        assert await client.send_sms(**sms()) == SendAccepted(1, "queued", 1, False)
        # A datetime is sent as the string api.md shows.
        assert await client.send_sms(**sms(MMS_SEND, timestamp=T0)) == SendAccepted(
            2, "queued", 1, False
        )
        assert await client.send_email(
            from_=EMAIL_SEND["from"],
            to=EMAIL_SEND["to"],
            body=EMAIL_SEND["body"],
            attachments=EMAIL_SEND["attachments"],
            timestamp=T0.astimezone(timezone(timedelta(hours=-5))),
        ) == SendAccepted(3, "queued", 2, False)
        # The client has no webhook method: the providers call those.
        for path, body in [
            ("/api/webhooks/sms", SMS_WEBHOOK),
            ("/api/webhooks/sms", MMS_WEBHOOK),
            ("/api/webhooks/email", EMAIL_WEBHOOK),
        ]:
            async with client.session.post(base + path, json=body) as response:
                assert response.status == 202, await response.text()
        service = Service(server, client.session, db)
        for message_id in (1, 2, 3):
            await service.wait_for(message_id, "sent", within=5)
        await wait_until(lambda: db.fetchval("SELECT count(*) = 6 FROM messages"), within=5)

        messages = [m async for m in client.messages(1)]
        assert [m.id for m in messages][:2] == [1, 2]
        assert messages == [
            message(messages[0].id, "outbound", SMS_SEND, "sent"),
            message(messages[1].id, "outbound", MMS_SEND, "sent"),
            message(messages[2].id, "inbound", SMS_WEBHOOK, "received"),
            message(messages[3].id, "inbound", MMS_WEBHOOK, "received"),
        ]
        email = [m async for m in client.messages(2)]
        assert [(m.direction, m.type, m.status, m.body) for m in email] == [
            ("outbound", "email", "sent", EMAIL_SEND["body"]),
            ("inbound", "email", "received", EMAIL_WEBHOOK["body"]),
        ]

        # Same last activity: the higher id first.
        assert [c async for c in client.conversations()] == [
            Conversation(
                id=2,
                channel="email",
                participants=("contact@gmail.com", "user@usehatchapp.com"),
                message_count=2,
                last_activity_at=T0,
                last_message=LastMessage(
                    id=email[1].id,
                    direction="inbound",
                    type="email",
                    from_="contact@gmail.com",
                    to="user@usehatchapp.com",
                    preview="This is an incoming email with HTML content",
                    timestamp=T0,
                ),
            ),
            Conversation(
                id=1,
                channel="sms",
                participants=("+12016661234", "+18045551234"),
                message_count=4,
                last_activity_at=T0,
                last_message=LastMessage(
                    id=messages[3].id,
                    direction="inbound",
                    type="mms",
                    from_="+18045551234",
                    to="+12016661234",
                    preview=MMS_WEBHOOK["body"],
                    timestamp=T0,
                ),
            ),
        ]
        with pytest.raises(NotFound) as missing:
            [m async for m in client.messages(3)]
        assert missing.value.instance == "/api/conversations/3/messages"


def message(message_id: int, direction: str, body: dict[str, Any], status: str) -> Message:
    return Message(
        id=message_id,
        direction=direction,
        type=body["type"],
        from_=body["from"],
        to=body["to"],
        conversation_id=1,
        body=body["body"],
        body_truncated=False,
        attachments=tuple(body["attachments"] or ()),
        timestamp=T0,
        status=status,
    )


# 250 conversations whose activity is a permutation of 125 minutes: every time
# twice, so that the ties (the higher id first) fall on the pages' edges too.
ARRANGE_CONVERSATIONS = """
INSERT INTO conversations (kind, participant_a, participant_b, last_activity_at)
SELECT 'sms', '+12016661234', '+1804555' || lpad(i::text, 4, '0'),
       timestamptz '2024-11-01 00:00Z' + ((i * 97) % 125) * interval '1 minute'
FROM generate_series(1, 250) AS i
"""


@pytest.mark.parametrize(("page_size", "requests"), [(40, 7), (50, 5), (None, 2)])
async def test_conversations_yields_every_page_in_the_services_order(
    proxy: ScriptedProxy, db: asyncpg.Connection, page_size: int | None, requests: int
) -> None:
    await db.execute(ARRANGE_CONVERSATIONS)
    rows = await db.fetch("SELECT id, last_activity_at FROM conversations")
    # Newest activity first, ties: the higher id first.
    expected = [r["id"] for r in sorted(rows, key=lambda r: (r["last_activity_at"], r["id"]))]
    expected.reverse()

    async with MessagingClient(proxy.url) as client:
        seen = [c async for c in client.conversations(page_size=page_size)]

    assert [c.id for c in seen] == expected
    assert len(set(expected)) == 250
    assert all(c.message_count == 0 and c.last_message is None for c in seen)
    pages = proxy.arrived("GET", "/api/conversations")
    # The walk stops at the total: after a full last page, it asks for no empty one.
    assert [a.query for a in pages] == [
        {"page": str(n), "pageSize": str(page_size or 200)} for n in range(1, requests + 1)
    ]


async def test_messages_yields_every_page_oldest_first(
    proxy: ScriptedProxy, db: asyncpg.Connection
) -> None:
    conversation = await arrange.conversation(db, "sms", "+12016661234", "+18045551234")
    times = [T0 + timedelta(minutes=m) for m in (5, 1, 3, 1, 4, 2, 0)]
    ids = [
        await arrange.message(db, conversation, sent_at=t, body=f"m{i}")
        for i, t in enumerate(times)
    ]
    expected = [i for _, i in sorted(zip(times, ids, strict=True))]

    async with MessagingClient(proxy.url, page_size=3) as client:
        seen = [m async for m in client.messages(conversation)]

    assert [m.id for m in seen] == expected
    assert [m.timestamp for m in seen] == sorted(times)
    assert len(proxy.arrived("GET", f"/api/conversations/{conversation}/messages")) == 3


@pytest.mark.parametrize(
    "lost",
    [LoseAnswer(Answer(503, {"Retry-After": "0"})), LoseAnswer()],
    ids=["503-after-storing", "connection-cut-after-storing"],
)
async def test_a_send_whose_answer_was_lost_is_retried_with_its_key_and_stored_once(
    proxy: ScriptedProxy, db: asyncpg.Connection, lost: LoseAnswer
) -> None:
    proxy.on("POST", SMS_PATH, lost)
    async with MessagingClient(proxy.url, backoff_base_s=0.01) as client:
        accepted = await client.send_sms(**sms())

    # The first attempt was stored; the retry was answered as its replay.
    assert accepted == SendAccepted(1, "queued", 1, replayed=True)
    attempts = proxy.arrived("POST", SMS_PATH)
    assert [a.fault for a in attempts] == [lost, None]
    keys = {a.headers["Idempotency-Key"] for a in attempts}
    assert len(keys) == 1
    (key,) = keys
    assert uuid.UUID(key).version == 4
    assert await db.fetchval("SELECT count(*) FROM messages") == 1
    assert [tuple(r) for r in await db.fetch("SELECT key, message_id FROM idempotency_keys")] == [
        (key, 1)
    ]


async def test_a_key_given_by_the_caller_is_the_one_sent(
    proxy: ScriptedProxy, db: asyncpg.Connection
) -> None:
    async with MessagingClient(proxy.url) as client:
        first = await client.send_sms(**sms(), idempotency_key="order-17")
        again = await client.send_sms(**sms(), idempotency_key="order-17")
    assert (first.replayed, again.replayed) == (False, True)
    assert first.id == again.id
    assert [a.headers["Idempotency-Key"] for a in proxy.arrivals] == ["order-17", "order-17"]
    assert await db.fetchval("SELECT count(*) FROM messages") == 1


def in_two_seconds() -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)


@pytest.mark.parametrize("retry_after", [lambda: "1", in_two_seconds], ids=["seconds", "date"])
async def test_a_429_is_retried_no_sooner_than_its_retry_after(
    proxy: ScriptedProxy, db: asyncpg.Connection, retry_after: Any
) -> None:
    proxy.on("POST", SMS_PATH, Answer(429, {"Retry-After": retry_after()}))
    # Without Retry-After, the backoff would retry within a millisecond.
    async with MessagingClient(proxy.url, backoff_base_s=0.001) as client:
        accepted = await client.send_sms(**sms())

    # The 429 came from the proxy: the service saw the second attempt only.
    assert accepted == SendAccepted(1, "queued", 1, replayed=False)
    first, second = proxy.arrived("POST", SMS_PATH)
    # A date's second is truncated: "in two seconds" is at least one away.
    assert second.at - first.at >= 0.95
    assert await db.fetchval("SELECT count(*) FROM messages") == 1


async def test_503s_beyond_max_retries_raise_unavailable_with_the_problem(
    proxy: ScriptedProxy, db: asyncpg.Connection
) -> None:
    proxy.on("POST", SMS_PATH, *[Answer(503, {"Retry-After": "0"})] * 3)
    async with MessagingClient(proxy.url, max_retries=2, backoff_base_s=0.001) as client:
        with pytest.raises(Unavailable) as refused:
            await client.send_sms(**sms())
    error = refused.value
    assert (error.status, error.title, error.retry_after) == (503, "Injected", 0.0)
    assert len(proxy.arrived("POST", SMS_PATH)) == 3
    assert await db.fetchval("SELECT count(*) FROM messages") == 0


async def test_a_refused_send_is_not_retried_and_raises_its_fields(
    proxy: ScriptedProxy,
) -> None:
    async with MessagingClient(proxy.url) as client:
        with pytest.raises(BadRequest) as refused:
            await client.send_sms(**sms(MMS_SEND, attachments=None))
    error = refused.value
    assert error.status == 400 and error.title == "Bad Request"
    assert error.instance == SMS_PATH and error.type == "about:blank"
    assert error.errors is not None and [e.field for e in error.errors] == ["/attachments"]
    assert isinstance(error.errors[0], FieldProblem) and error.errors[0].message
    assert error.request_id
    assert len(proxy.arrived("POST", SMS_PATH)) == 1


async def test_a_session_passed_in_is_used_and_left_open(proxy: ScriptedProxy) -> None:
    async with aiohttp.ClientSession(headers={"User-Agent": "the-app/1"}) as session:
        async with MessagingClient(proxy.url, session=session) as client:
            assert client.session is session
            await client.send_sms(**sms())
        assert not session.closed
        # Without `async with` too: the session's owner closes it.
        assert [
            c.id async for c in MessagingClient(proxy.url, session=session).conversations()
        ] == [1]
    assert [a.headers["User-Agent"] for a in proxy.arrivals] == ["the-app/1"] * 2


async def test_with_api_keys_a_client_with_a_key_works_and_one_without_is_refused(
    aiohttp_server: ServerFactory, settings: Settings, db: asyncpg.Connection
) -> None:
    key = await arrange.api_key(db, "client", "send", "read")
    reader = await arrange.api_key(db, "reader", "read")
    server = await serve_on_own_port(aiohttp_server, settings.replace(api_auth="keys"))
    base = base_url(server)

    async with MessagingClient(base, api_key=key) as client:
        assert await client.send_sms(**sms()) == SendAccepted(1, "queued", 1, False)
        assert [c.id async for c in client.conversations()] == [1]
        assert [m.body async for m in client.messages(1)] == [SMS_SEND["body"]]

    async with MessagingClient(base) as anonymous:
        with pytest.raises(Unauthorized) as refused:
            await anonymous.send_sms(**sms(body="not stored"))
        error = refused.value
        assert (error.status, error.title, error.type) == (401, "Unauthorized", "about:blank")
        assert error.detail == "This route needs an API key: Authorization: Bearer <key>."
        assert error.instance == SMS_PATH
        assert error.request_id and error.errors is None and error.retry_after is None
        with pytest.raises(Unauthorized):
            [c async for c in anonymous.conversations()]

    async with MessagingClient(base, api_key="msk_not-a-key") as wrong:
        with pytest.raises(Unauthorized) as refused:
            [c async for c in wrong.conversations()]
        assert refused.value.detail == "The API key is not valid."

    async with MessagingClient(base, api_key=reader) as read_only:
        with pytest.raises(Forbidden) as forbidden:
            await read_only.send_sms(**sms(body="not stored either"))
        assert forbidden.value.status == 403 and "'send'" in forbidden.value.detail

    assert await db.fetchval("SELECT count(*) FROM messages") == 1
