"""The provider clients against the mock providers, over real HTTP (no database)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from messaging.app import init_mock_app
from messaging.config import Settings
from messaging.errors import ProviderRejected, ProviderRetryLater
from messaging.metrics import Metrics
from messaging.models import OutboundMessage
from messaging.providers.client import Accepted, Providers, open_providers
from tests.support.aliases import ServerFactory

T0 = datetime(2024, 11, 1, 14, tzinfo=UTC)
SMS = OutboundMessage("sms", "+12016661234", "+18045551234", "Hello", (), T0)
MMS = OutboundMessage("mms", "+12016661234", "+18045551234", "", ("https://example.com/a.jpg",), T0)
EMAIL = OutboundMessage("email", "user@usehatchapp.com", "contact@gmail.com", "<b>Hi</b>", (), T0)


class Mock:
    """Drives a mock provider server through its HTTP endpoints, as a test would."""

    def __init__(self, server: TestServer, session: aiohttp.ClientSession) -> None:
        self.server = server
        self.session = session

    def url(self, path: str) -> str:
        return str(self.server.make_url(f"/mock{path}"))

    async def configure(self, provider: str, **changes: Any) -> dict[str, Any]:
        async with self.session.patch(self.url(f"/{provider}/config"), json=changes) as r:
            assert r.status == 200, await r.text()
            body: dict[str, Any] = await r.json()
            return body

    async def deliveries(self, provider: str) -> dict[str, Any]:
        async with self.session.get(self.url(f"/{provider}/deliveries")) as r:
            body: dict[str, Any] = await r.json()
            return body


@pytest.fixture
async def mock(aiohttp_server: ServerFactory) -> AsyncIterator[Mock]:
    server = await aiohttp_server(init_mock_app(Settings(mock_seed=1)))
    async with aiohttp.ClientSession() as session:
        yield Mock(server, session)


@pytest.fixture
async def providers(mock: Mock) -> AsyncIterator[Providers]:
    settings = Settings(
        sms_provider_url=mock.url("/sms"),
        email_provider_url=mock.url("/email"),
        provider_timeout_ms=300,
    )
    async with open_providers(settings, Metrics()) as clients:
        yield clients


async def test_accepted_with_the_providers_id(mock: Mock, providers: Providers) -> None:
    outcome = await providers.for_type("sms").send(1, SMS)
    assert isinstance(outcome, Accepted)
    seen = await mock.deliveries("sms")
    assert seen["accepted"] == 1
    delivery = seen["deliveries"][0]
    assert delivery["provider_message_id"] == outcome.provider_message_id
    assert delivery["idempotency_key"] == "msg-1"
    assert delivery["payload"] == {
        "from": "+12016661234",
        "to": "+18045551234",
        "type": "sms",
        "body": "Hello",
        "attachments": None,
        "timestamp": "2024-11-01T14:00:00Z",
    }


async def test_each_type_goes_to_its_provider(mock: Mock, providers: Providers) -> None:
    assert isinstance(await providers.for_type("mms").send(2, MMS), Accepted)
    assert isinstance(await providers.for_type("email").send(3, EMAIL), Accepted)
    sms, email = await mock.deliveries("sms"), await mock.deliveries("email")
    assert sms["deliveries"][0]["payload"]["attachments"] == ["https://example.com/a.jpg"]
    assert email["deliveries"][0]["payload"]["body"] == "<b>Hi</b>"
    assert "type" not in email["deliveries"][0]["payload"]


async def test_a_repeated_send_is_one_delivery(mock: Mock, providers: Providers) -> None:
    first = await providers.sms.send(7, SMS)
    again = await providers.sms.send(7, SMS)
    assert isinstance(first, Accepted)
    assert again == first
    seen = await mock.deliveries("sms")
    assert (seen["accepted"], seen["requests"]) == (1, 2)


async def test_429_with_retry_after_seconds(mock: Mock, providers: Providers) -> None:
    await mock.configure("sms", script=["429"], retry_after_secs=2)
    before = datetime.now(UTC)
    outcome = await providers.sms.send(1, SMS)
    assert isinstance(outcome, ProviderRetryLater)
    assert outcome.not_before is not None
    assert before + timedelta(seconds=2) <= outcome.not_before
    assert outcome.not_before <= datetime.now(UTC) + timedelta(seconds=2)
    assert (await mock.deliveries("sms"))["accepted"] == 0


async def test_429_with_retry_after_date(mock: Mock, providers: Providers) -> None:
    await mock.configure("email", script=["429"], retry_after_secs=2, retry_after_date=True)
    outcome = await providers.email.send(1, EMAIL)
    assert isinstance(outcome, ProviderRetryLater)
    assert outcome.not_before is not None
    assert outcome.not_before >= datetime.now(UTC) + timedelta(seconds=1)


async def test_429_without_retry_after_leaves_the_delay_to_backoff(
    mock: Mock, providers: Providers
) -> None:
    await mock.configure("sms", script=["429"], retry_after_secs=None)
    outcome = await providers.sms.send(1, SMS)
    assert isinstance(outcome, ProviderRetryLater)
    assert outcome.not_before is None


async def test_500_three_times_then_one_delivery(mock: Mock, providers: Providers) -> None:
    await mock.configure("sms", script=["500", "500", "500", "ok"])
    outcomes = [await providers.sms.send(1, SMS) for _ in range(4)]
    assert [type(o) for o in outcomes] == [ProviderRetryLater] * 3 + [Accepted]
    assert all(o.not_before is None for o in outcomes[:3])  # type: ignore[union-attr]
    seen = await mock.deliveries("sms")
    assert (seen["accepted"], seen["answers"]) == (1, {"500": 3, "200": 1})
    assert seen["deliveries"][0]["requests"] == 4


async def test_400_is_rejected(mock: Mock, providers: Providers) -> None:
    await mock.configure("email", script=["400"])
    outcome = await providers.email.send(1, EMAIL)
    assert isinstance(outcome, ProviderRejected)
    assert outcome.status == 400
    assert (await mock.deliveries("email"))["accepted"] == 0


async def test_a_hang_times_out_and_the_retry_is_not_a_second_delivery(
    mock: Mock, providers: Providers
) -> None:
    await mock.configure("sms", script=["hang"], hang_secs=5)
    timed_out = await providers.sms.send(1, SMS)
    assert isinstance(timed_out, ProviderRetryLater)
    assert "in time" in timed_out.reason
    retried = await providers.sms.send(1, SMS)
    assert isinstance(retried, Accepted)
    seen = await mock.deliveries("sms")
    assert seen["accepted"] == 1
    assert seen["deliveries"][0]["provider_message_id"] == retried.provider_message_id


async def test_random_faults_never_deliver_twice(mock: Mock, providers: Providers) -> None:
    await mock.configure(
        "sms", rates={"429": 0.2, "500": 0.2, "hang": 0.1}, hang_secs=1, retry_after_secs=0, seed=3
    )
    for message_id in range(1, 11):
        for _ in range(30):
            if isinstance(await providers.sms.send(message_id, SMS), Accepted):
                break
        else:
            pytest.fail(f"message {message_id} never accepted")
    seen = await mock.deliveries("sms")
    keys = [d["idempotency_key"] for d in seen["deliveries"]]
    assert sorted(keys) == sorted(f"msg-{i}" for i in range(1, 11))


async def test_unreachable_provider_is_retry_later() -> None:
    settings = Settings(sms_provider_url="http://127.0.0.1:9", provider_timeout_ms=500)
    async with open_providers(settings, Metrics()) as clients:
        outcome = await clients.sms.send(1, SMS)
    assert isinstance(outcome, ProviderRetryLater)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, b'{"unexpected": 1}', ProviderRetryLater),
        (202, b"not json", ProviderRetryLater),
        (201, b'{"messaging_provider_id": 12}', Accepted),
        (302, b"", ProviderRetryLater),
        (408, b"", ProviderRetryLater),
        (503, b"", ProviderRetryLater),
        (404, b"", ProviderRejected),
        (422, b"", ProviderRejected),
    ],
)
async def test_classification_of_other_answers(
    aiohttp_server: ServerFactory, status: int, body: bytes, expected: type
) -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body, headers={"Location": "/elsewhere"})

    app = web.Application()
    app.router.add_post("/messages", answer)
    server = await aiohttp_server(app)
    settings = Settings(sms_provider_url=str(server.make_url("")).rstrip("/"))
    async with open_providers(settings, Metrics()) as clients:
        assert isinstance(await clients.sms.send(1, SMS), expected)
