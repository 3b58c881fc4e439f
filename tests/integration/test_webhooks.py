"""Webhook ingestion through the real HTTP stack into a real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import pytest

from messaging.app import init_app
from messaging.config import Settings
from tests.support.aliases import Client
from tests.support.metrics import scrape
from tests.support.outage import DatabaseOutage
from tests.support.payloads import EMAIL_WEBHOOK as EMAIL
from tests.support.payloads import MMS_WEBHOOK as MMS
from tests.support.payloads import SMS_WEBHOOK as SMS


async def count(db: asyncpg.Connection) -> int:
    return int(await db.fetchval("SELECT count(*) FROM inbound_events"))


@pytest.mark.parametrize(
    ("path", "payload", "channel", "provider_id"),
    [
        ("/api/webhooks/sms", SMS, "sms", "message-1"),
        ("/api/webhooks/sms", MMS, "sms", "message-2"),
        ("/api/webhooks/email", EMAIL, "email", "message-3"),
    ],
)
async def test_each_variant_is_stored_and_answered_202(
    client: Client,
    db: asyncpg.Connection,
    path: str,
    payload: dict[str, Any],
    channel: str,
    provider_id: str,
) -> None:
    response = await client.post(path, json=payload)
    assert response.status == 202
    body = await response.json()
    row = await db.fetchrow("SELECT * FROM inbound_events WHERE id = $1", body["id"])
    assert row is not None
    assert (row["channel"], row["provider_message_id"]) == (channel, provider_id)
    assert row["status"] == "received"
    assert row["attempt_count"] == 0
    assert json.loads(row["payload"]) == payload
    assert await count(db) == 1


async def test_duplicate_gives_same_id_and_one_row(client: Client, db: asyncpg.Connection) -> None:
    first = await (await client.post("/api/webhooks/sms", json=SMS)).json()
    response = await client.post("/api/webhooks/sms", json=SMS)
    assert response.status == 202
    second = await response.json()
    assert second["id"] == first["id"]
    assert (first["duplicate"], second["duplicate"]) == (False, True)
    assert await count(db) == 1


async def test_same_provider_id_on_other_channel_is_another_event(
    client: Client, db: asyncpg.Connection
) -> None:
    await client.post("/api/webhooks/sms", json=SMS)
    await client.post(
        "/api/webhooks/email", json={**EMAIL, "xillio_id": SMS["messaging_provider_id"]}
    )
    assert await count(db) == 2


async def test_addresses_are_stored_normalised(client: Client, db: asyncpg.Connection) -> None:
    await client.post("/api/webhooks/sms", json={**SMS, "from": "(804) 555-1234"})
    await client.post("/api/webhooks/email", json={**EMAIL, "from": "Contact@Gmail.COM"})
    rows = await db.fetch("SELECT from_address FROM inbound_events ORDER BY id")
    assert [r["from_address"] for r in rows] == ["+18045551234", "contact@gmail.com"]


async def assert_problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status == status
    assert response.content_type == "application/problem+json"
    body: dict[str, Any] = await response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"]
    if field is not None:
        assert field in {e["field"] for e in body["errors"]}
    return body


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/api/webhooks/sms", {**SMS, "type": "fax"}, "/type"),
        ("/api/webhooks/sms", {**MMS, "attachments": None}, "/attachments"),
        ("/api/webhooks/sms", {**MMS, "attachments": []}, "/attachments"),
        ("/api/webhooks/sms", {**SMS, "from": "hello"}, "/from"),
        ("/api/webhooks/sms", {**SMS, "timestamp": "Nov 1"}, "/timestamp"),
        ("/api/webhooks/sms", {k: v for k, v in SMS.items() if k != "messaging_provider_id"},
         "/messaging_provider_id"),
        ("/api/webhooks/email", {**EMAIL, "body": ""}, "/body"),
        ("/api/webhooks/email", {**EMAIL, "to": "nobody"}, "/to"),
    ],
)  # fmt: skip
async def test_invalid_fields_are_400_naming_the_field(
    client: Client, db: asyncpg.Connection, path: str, payload: dict[str, Any], field: str
) -> None:
    await assert_problem(await client.post(path, json=payload), 400, field)
    assert await count(db) == 0


async def test_wrong_content_type_is_415(client: Client) -> None:
    response = await client.post(
        "/api/webhooks/sms", data=json.dumps(SMS), headers={"Content-Type": "text/plain"}
    )
    await assert_problem(response, 415)


async def test_malformed_json_is_400(client: Client) -> None:
    response = await client.post(
        "/api/webhooks/sms", data="{oops", headers={"Content-Type": "application/json"}
    )
    await assert_problem(response, 400)


async def test_body_over_the_limit_is_413(aiohttp_client: Any, settings: Settings) -> None:
    client = await aiohttp_client(init_app(settings.replace(max_body_bytes=4096)))
    response = await client.post("/api/webhooks/email", json={**EMAIL, "body": "x" * 10_000})
    await assert_problem(response, 413)


async def test_accept_excluding_json_is_406(client: Client) -> None:
    response = await client.post("/api/webhooks/sms", json=SMS, headers={"Accept": "text/html"})
    await assert_problem(response, 406)
    ok = await client.post(
        "/api/webhooks/sms", json=SMS, headers={"Accept": "text/html, application/json;q=0.5"}
    )
    assert ok.status == 202


async def test_unknown_path_is_404_and_wrong_method_405(client: Client) -> None:
    await assert_problem(await client.get("/api/nothing-here"), 404)
    await assert_problem(await client.get("/api/webhooks/sms"), 405)


HOSTILE = [
    b"[" * 10_000 + b"]" * 10_000,
    b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
    json.dumps({**SMS, "body": "nul \u0000 inside"}).encode(),
    json.dumps({**SMS, "extra": "nul \u0000 inside"}).encode(),
    json.dumps({**SMS, "body": "lone \ud800 surrogate"}).encode(),
    json.dumps(SMS).replace('"body"', '"x": 1e999999, "body"').encode(),
    json.dumps(SMS).replace('"body"', '"x": ' + "7" * 10_000 + ', "body"').encode(),
    json.dumps(SMS).replace('"body"', '"x": NaN, "body"').encode(),
    json.dumps({**MMS, "attachments": ["https://example.com/a.jpg"] * 5_000}).encode(),
    json.dumps({**SMS, "body": "x" * 200_000}).encode(),
    json.dumps({**SMS, "messaging_provider_id": "x" * 100_000}).encode(),
    json.dumps({**SMS, "from": "1" * 100_000}).encode(),
    b"\xff\xfe\xfd",
]


@pytest.mark.parametrize("raw", HOSTILE, ids=range(len(HOSTILE)))
async def test_hostile_input_is_4xx_and_stores_nothing(
    client: Client, db: asyncpg.Connection, raw: bytes
) -> None:
    response = await client.post(
        "/api/webhooks/sms", data=raw, headers={"Content-Type": "application/json"}
    )
    assert 400 <= response.status < 500
    assert response.content_type == "application/problem+json"
    assert await count(db) == 0


async def test_request_id_is_propagated_or_generated(client: Client) -> None:
    given = await client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert given.headers["X-Request-Id"] == "abc-123"
    generated = await client.get("/healthz")
    assert len(generated.headers["X-Request-Id"]) >= 16


async def test_fifty_concurrent_identical_webhooks_make_one_row(
    client: Client, db: asyncpg.Connection
) -> None:
    responses = await asyncio.gather(
        *(client.post("/api/webhooks/sms", json=SMS) for _ in range(50))
    )
    assert {r.status for r in responses} == {202}
    ids = {(await r.json())["id"] for r in responses}
    assert len(ids) == 1
    assert await count(db) == 1


async def test_five_hundred_concurrent_webhooks_share_commits(
    client: Client, db: asyncpg.Connection
) -> None:
    responses = await asyncio.gather(
        *(
            client.post("/api/webhooks/sms", json={**SMS, "messaging_provider_id": f"m-{i}"})
            for i in range(500)
        )
    )
    assert {r.status for r in responses} == {202}
    assert len({(await r.json())["id"] for r in responses}) == 500
    assert await count(db) == 500
    commits = (await scrape(client)).value("messaging_ingest_commits_total")
    assert 0 < commits < 500


async def test_without_group_commit_each_request_commits_alone(
    aiohttp_client: Any, settings: Settings, db: asyncpg.Connection
) -> None:
    client = await aiohttp_client(init_app(settings.replace(group_commit=False)))
    responses = await asyncio.gather(
        *(
            client.post("/api/webhooks/sms", json={**SMS, "messaging_provider_id": f"m-{i}"})
            for i in range(50)
        )
    )
    assert {r.status for r in responses} == {202}
    assert (await scrape(client)).value("messaging_ingest_commits_total") == 50


async def test_one_bad_row_fails_only_its_own_request(
    client: Client, db: asyncpg.Connection
) -> None:
    # A constraint only the database knows: the batch is refused as a whole,
    # then retried row by row, so the good requests still get their 202.
    await db.execute(
        "ALTER TABLE inbound_events ADD CONSTRAINT no_poison CHECK (provider_message_id <> 'poison')"
    )
    ids = [f"ok-{i}" for i in range(30)] + ["poison"]
    responses = await asyncio.gather(
        *(client.post("/api/webhooks/sms", json={**SMS, "messaging_provider_id": i}) for i in ids)
    )
    statuses = [r.status for r in responses]
    assert statuses[:-1] == [202] * 30
    assert 400 <= statuses[-1] < 500
    assert await count(db) == 30


async def test_data_survives_an_app_restart(aiohttp_client: Any, settings: Settings) -> None:
    first = await aiohttp_client(init_app(settings))
    stored = await (await first.post("/api/webhooks/sms", json=SMS)).json()
    await first.close()
    second = await aiohttp_client(init_app(settings))
    again = await (await second.post("/api/webhooks/sms", json=SMS)).json()
    assert again == {**stored, "duplicate": True}


async def test_database_down_is_503_never_202(
    client: Client, database_url: str, database_outage: DatabaseOutage
) -> None:
    assert (await client.post("/api/webhooks/sms", json=SMS)).status == 202
    async with database_outage:
        response = await client.post(
            "/api/webhooks/sms", json={**SMS, "messaging_provider_id": "during-outage"}
        )
        await assert_problem(response, 503)
        assert response.headers["Retry-After"]
        assert (await client.get("/readyz")).status == 503
        assert (await client.get("/healthz")).status == 200
    db = await asyncpg.connect(database_url)
    assert await count(db) == 1
    await db.close()
    recovered = await client.post(
        "/api/webhooks/sms", json={**SMS, "messaging_provider_id": "after-outage"}
    )
    assert recovered.status == 202


async def test_unreachable_database_from_the_start_is_503(aiohttp_client: Any) -> None:
    settings = Settings(database_url="postgresql://postgres@127.0.0.1:9/none", log_format="text")
    client = await aiohttp_client(init_app(settings))
    await assert_problem(await client.post("/api/webhooks/sms", json=SMS), 503)
