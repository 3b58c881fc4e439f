"""Signed webhooks (Standard Webhooks) through the real HTTP stack into a real
PostgreSQL: requests signed by the scheme's own package (standardwebhooks) are
taken, every kind of bad signature is a 401 that stores nothing, and the mock
providers sign what they send."""

from __future__ import annotations

import gzip
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from standardwebhooks.webhooks import Webhook

from messaging.app import init_app, init_mock_app
from messaging.config import Settings
from messaging.signatures import decode_secret, sign
from tests.support.aliases import Client, ServerFactory
from tests.support.metrics import scrape
from tests.support.outage import DatabaseOutage
from tests.support.payloads import EMAIL_WEBHOOK, SMS_WEBHOOK
from tests.support.service import serve_on_own_port

# Two secrets in the whsec_ form a provider hands out (24 and 32 bytes).
SECRET_A = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SECRET_B = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

Request = tuple[bytes, dict[str, str]]


def signed(
    payload: dict[str, Any],
    secret: str = SECRET_A,
    *,
    msg_id: str = "msg_2mUq8CE8Ts7dG6h",
    at: datetime | None = None,
    signed_id: str | None = None,
) -> Request:
    """A webhook's body and headers, signed by the standardwebhooks package
    (over signed_id instead of msg_id when given)."""
    body = json.dumps(payload).encode()
    at = at or datetime.now(UTC)
    signature = Webhook(secret).sign(signed_id or msg_id, at, body.decode())
    return body, {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


def keys(*secrets: str) -> tuple[bytes, ...]:
    return tuple(decode_secret(s) for s in secrets)


def with_secrets(settings: Settings, *secrets: str) -> Settings:
    return settings.replace(
        sms_webhook_secrets=keys(*secrets), email_webhook_secrets=keys(*secrets)
    )


async def count(db: asyncpg.Connection) -> int:
    return int(await db.fetchval("SELECT count(*) FROM inbound_events"))


@pytest.fixture
async def signed_client(aiohttp_client: Any, settings: Settings) -> Client:
    """The service with SECRET_A for both channels."""
    return await aiohttp_client(init_app(with_secrets(settings, SECRET_A)))  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("path", "payload", "provider_id"),
    [
        ("/api/webhooks/sms", SMS_WEBHOOK, "message-1"),
        ("/api/webhooks/email", EMAIL_WEBHOOK, "message-3"),
    ],
)
async def test_a_webhook_signed_by_the_standardwebhooks_package_is_taken(
    signed_client: Client,
    db: asyncpg.Connection,
    path: str,
    payload: dict[str, Any],
    provider_id: str,
) -> None:
    body, headers = signed(payload)
    response = await signed_client.post(path, data=body, headers=headers)
    assert response.status == 202, await response.text()
    assert (await response.json())["provider_message_id"] == provider_id
    row = await db.fetchrow("SELECT payload FROM inbound_events")
    assert row is not None and json.loads(row["payload"]) == payload


def _unsigned() -> Request:
    return json.dumps(SMS_WEBHOOK).encode(), {"Content-Type": "application/json"}


def _flipped_body_byte() -> Request:
    body, headers = signed(SMS_WEBHOOK)
    changed = bytearray(body)
    changed[body.index(b"incoming")] ^= 1  # "hncoming": still a valid webhook
    return bytes(changed), headers


def _malformed_signature() -> Request:
    body, headers = signed(SMS_WEBHOOK)
    return body, {**headers, "webhook-signature": "v1,this-is-not-base64"}


def _malformed_timestamp() -> Request:
    body, headers = signed(SMS_WEBHOOK)
    return body, {**headers, "webhook-timestamp": "2024-11-01T14:00:00Z"}


REFUSED: dict[str, tuple[Callable[[], Request], str]] = {
    "unsigned": (_unsigned, "missing"),
    "wrong secret": (lambda: signed(SMS_WEBHOOK, SECRET_B), "No signature"),
    "flipped body byte": (_flipped_body_byte, "No signature"),
    "stale (6 min old)": (
        lambda: signed(SMS_WEBHOOK, at=datetime.now(UTC) - timedelta(minutes=6)),
        "in the past",
    ),
    "future (6 min ahead)": (
        lambda: signed(SMS_WEBHOOK, at=datetime.now(UTC) + timedelta(minutes=6)),
        "in the future",
    ),
    "malformed signature header": (_malformed_signature, "carries no v1 signature"),
    "malformed timestamp header": (_malformed_timestamp, "not integer Unix seconds"),
    "signed over another webhook-id": (
        lambda: signed(SMS_WEBHOOK, msg_id="msg_1", signed_id="msg_2"),
        "No signature",
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
async def test_a_bad_signature_is_401_saying_which_and_stores_nothing(
    signed_client: Client, db: asyncpg.Connection, case: str
) -> None:
    make, says = REFUSED[case]
    body, headers = make()
    response = await signed_client.post("/api/webhooks/sms", data=body, headers=headers)
    assert response.status == 401
    assert response.content_type == "application/problem+json"
    assert response.headers["WWW-Authenticate"] == "Standard-Webhooks"
    problem = await response.json()
    assert problem["status"] == 401
    assert says in problem["detail"]
    text = await response.text()
    assert (
        SECRET_A.removeprefix("whsec_") not in text and SECRET_B.removeprefix("whsec_") not in text
    )
    assert await count(db) == 0
    samples = await scrape(signed_client)
    assert samples.value("messaging_webhooks_total", channel="sms", outcome="unauthenticated") == 1
    assert samples.total("messaging_webhooks_total", outcome="accepted") == 0


async def test_with_two_secrets_a_signature_made_with_either_passes(
    aiohttp_client: Any, settings: Settings, db: asyncpg.Connection
) -> None:
    client = await aiohttp_client(init_app(with_secrets(settings, SECRET_B, SECRET_A)))
    for n, secret in enumerate((SECRET_A, SECRET_B)):
        body, headers = signed({**SMS_WEBHOOK, "messaging_provider_id": f"rotated-{n}"}, secret)
        response = await client.post("/api/webhooks/sms", data=body, headers=headers)
        assert response.status == 202, await response.text()
    # ... and a header with both (a sender mid-rotation) passes once.
    body, headers = signed({**SMS_WEBHOOK, "messaging_provider_id": "both"}, SECRET_A)
    other = signed({**SMS_WEBHOOK, "messaging_provider_id": "both"}, SECRET_B)[1]
    headers["webhook-signature"] += " " + other["webhook-signature"]
    assert (await client.post("/api/webhooks/sms", data=body, headers=headers)).status == 202
    assert await count(db) == 3


async def test_only_a_channel_with_secrets_requires_signatures(
    aiohttp_client: Any, settings: Settings, db: asyncpg.Connection
) -> None:
    client = await aiohttp_client(init_app(settings.replace(sms_webhook_secrets=keys(SECRET_A))))
    assert (await client.post("/api/webhooks/sms", json=SMS_WEBHOOK)).status == 401
    assert (await client.post("/api/webhooks/email", json=EMAIL_WEBHOOK)).status == 202
    assert await db.fetchval("SELECT array_agg(channel) FROM inbound_events") == ["email"]


async def test_the_start_warns_once_naming_the_variable_of_each_unsigned_channel(
    aiohttp_client: Any, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="messaging"):
        await aiohttp_client(init_app(settings.replace(sms_webhook_secrets=keys(SECRET_A))))
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [m for m in warned if "WEBHOOK_SECRETS" in m] == [
        "email webhooks are accepted unsigned: MESSAGING_EMAIL_WEBHOOK_SECRETS is not set"
    ]


async def test_a_compressed_body_is_signed_as_sent(
    signed_client: Client, db: asyncpg.Connection
) -> None:
    raw = gzip.compress(json.dumps(SMS_WEBHOOK).encode())
    now = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        "webhook-id": "msg_gz",
        "webhook-timestamp": str(now),
    }
    # A signature over the decoded JSON is not one over what was sent.
    over_json = sign(decode_secret(SECRET_A), "msg_gz", now, json.dumps(SMS_WEBHOOK).encode())
    response = await signed_client.post(
        "/api/webhooks/sms", data=raw, headers={**headers, "webhook-signature": over_json}
    )
    assert response.status == 401
    over_sent = sign(decode_secret(SECRET_A), "msg_gz", now, raw)
    response = await signed_client.post(
        "/api/webhooks/sms", data=raw, headers={**headers, "webhook-signature": over_sent}
    )
    assert response.status == 202, await response.text()
    assert await count(db) == 1


async def test_a_refused_webhook_does_no_database_work(
    signed_client: Client, database_outage: DatabaseOutage
) -> None:
    async with database_outage:
        for make, _ in REFUSED.values():
            body, headers = make()
            response = await signed_client.post("/api/webhooks/sms", data=body, headers=headers)
            assert response.status == 401  # not 503: the database was never asked
        # The same service with a good signature does need it.
        body, headers = signed(SMS_WEBHOOK)
        response = await signed_client.post("/api/webhooks/sms", data=body, headers=headers)
        assert response.status == 503


async def test_a_replay_or_a_new_webhook_id_stays_a_duplicate_of_the_provider_id(
    signed_client: Client, db: asyncpg.Connection
) -> None:
    body, headers = signed(SMS_WEBHOOK, msg_id="msg_first")
    first = await (await signed_client.post("/api/webhooks/sms", data=body, headers=headers)).json()
    replayed = await signed_client.post("/api/webhooks/sms", data=body, headers=headers)
    body, headers = signed(SMS_WEBHOOK, msg_id="msg_second")
    renamed = await signed_client.post("/api/webhooks/sms", data=body, headers=headers)
    for response in (replayed, renamed):
        assert response.status == 202
        assert await response.json() == {**first, "duplicate": True}
    assert await count(db) == 1


async def test_the_mocks_signature_verifies_with_the_standardwebhooks_package(
    aiohttp_server: ServerFactory,
) -> None:
    seen: list[tuple[dict[str, str], bytes]] = []

    async def capture(request: web.Request) -> web.Response:
        seen.append((dict(request.headers), await request.read()))
        return web.json_response({"id": 1}, status=202)

    catcher = web.Application()
    catcher.router.add_post("/api/webhooks/sms", capture)
    target = await aiohttp_server(catcher)
    mock = await aiohttp_server(
        init_mock_app(
            Settings(
                sms_webhook_secrets=keys(SECRET_A, SECRET_B),
                mock_webhook_url=str(target.make_url("")).rstrip("/"),
                log_format="text",
            )
        )
    )
    async with aiohttp.ClientSession() as session:
        message = {"from": "+18045551234", "to": "+12016661234", "body": "Hi"}
        async with session.post(mock.make_url("/mock/sms/inbound"), json=message) as response:
            assert response.status == 200
            played = await response.json()
    assert played["webhook"]["status"] == 202
    [(headers, body)] = seen
    # The first secret listed is the one the provider signs with; the
    # package finds its signature and hands back the webhook.
    webhook = Webhook(SECRET_A).verify(body, headers)
    assert webhook["messaging_provider_id"] == played["provider_message_id"]
    assert len(headers["webhook-signature"].split()) == 1


async def test_the_mock_signs_its_webhooks_to_the_service(
    aiohttp_server: ServerFactory, settings: Settings, db: asyncpg.Connection
) -> None:
    server = await serve_on_own_port(aiohttp_server, with_secrets(settings, SECRET_A))
    # The mock served alone, with a secret the service does not hold.
    stranger = await aiohttp_server(
        init_mock_app(
            with_secrets(settings, SECRET_B).replace(
                mock_webhook_url=str(server.make_url("")).rstrip("/")
            )
        )
    )
    message = {"from": "+18045551234", "to": "+12016661234", "body": "Hi"}
    async with aiohttp.ClientSession() as session:
        async with session.post(server.make_url("/mock/sms/inbound"), json=message) as response:
            played = await response.json()
        async with session.post(stranger.make_url("/mock/sms/inbound"), json=message) as response:
            refused = await response.json()
    assert played["webhook"]["status"] == 202, played
    assert refused["webhook"]["status"] == 401
    assert refused["webhook"]["attempts"] == 1  # a 401 is not retried
    rows = await db.fetch("SELECT provider_message_id FROM inbound_events")
    assert [r["provider_message_id"] for r in rows] == [played["provider_message_id"]]
