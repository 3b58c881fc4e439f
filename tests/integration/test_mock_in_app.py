"""The mock providers as `messaging serve` mounts them: under /mock of the service,
reached by the service's own provider clients, and calling its webhooks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import aiohttp
import asyncpg

from messaging.app import init_app
from messaging.config import Settings
from messaging.http.keys import PROVIDERS
from messaging.models import OutboundMessage
from messaging.providers.client import Accepted
from tests.support.aliases import Client, ServerFactory
from tests.support.payloads import EMAIL_WEBHOOK, MMS_WEBHOOK
from tests.support.service import serve_on_own_port


async def test_the_service_sends_through_its_own_mock(
    aiohttp_server: ServerFactory, settings: Settings
) -> None:
    server = await serve_on_own_port(aiohttp_server, settings)
    message = OutboundMessage(
        "sms", "+12016661234", "+18045551234", "Hi", (), datetime(2024, 11, 1, tzinfo=UTC)
    )
    outcome = await server.app[PROVIDERS].for_type("sms").send(1, message)
    assert isinstance(outcome, Accepted)
    async with (
        aiohttp.ClientSession() as session,
        session.get(server.make_url("/mock/sms/deliveries")) as response,
    ):
        seen = await response.json()
    assert [d["provider_message_id"] for d in seen["deliveries"]] == [outcome.provider_message_id]


async def test_the_mock_plays_a_provider_calling_our_webhooks(
    aiohttp_server: ServerFactory, settings: Settings, db: asyncpg.Connection
) -> None:
    server = await serve_on_own_port(aiohttp_server, settings)
    async with aiohttp.ClientSession() as session:
        # The mock gives the provider's id and the timestamp itself.
        sms = {
            k: v for k, v in MMS_WEBHOOK.items() if k not in ("messaging_provider_id", "timestamp")
        }
        async with session.post(server.make_url("/mock/sms/inbound"), json=sms) as response:
            assert response.status == 200
            played = await response.json()
        assert played["webhook"]["status"] == 202, played
        email = {**EMAIL_WEBHOOK, "body": "<html><body>Hi</body></html>", "attachments": None}
        async with session.post(server.make_url("/mock/email/inbound"), json=email) as response:
            assert (await response.json())["webhook"]["status"] == 202
        bad = {"from": "+18045551234", "to": "nobody", "body": "x"}
        async with session.post(server.make_url("/mock/sms/inbound"), json=bad) as response:
            refused = await response.json()
        assert refused["webhook"]["status"] == 400
        assert refused["webhook"]["attempts"] == 1  # a 400 is not retried
    rows = await db.fetch(
        "SELECT channel, provider_message_id, message_type FROM inbound_events ORDER BY id"
    )
    assert [tuple(r) for r in rows] == [
        ("sms", played["provider_message_id"], "mms"),
        ("email", "message-3", "email"),
    ]


async def test_no_mock_when_turned_off(
    aiohttp_client: Callable[..., Awaitable[Client]], settings: Settings
) -> None:
    client = await aiohttp_client(init_app(settings.replace(mock_providers=False)))
    response = await client.get("/mock/sms/config")
    assert response.status == 404
