"""Hostile input, second round (issue 8): one webhook must never break a read,
and a client's mistake is never a 500. Each class of defect is tried in several
spellings, through the real HTTP stack (raw sockets where a client library would
not misbehave on purpose) and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import unicodedata
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import jsonschema_rs
import pytest

from messaging.app import init_app
from messaging.config import Settings
from messaging.http.body import LINGER_S
from messaging.http.conversations import LIST_BODY_CHARS
from messaging.http.openapi import document
from messaging.http.requests import MAX_PAGE_SIZE, parse_sms_webhook
from messaging.mock.providers import MAX_SCRIPT
from tests.integration.test_webhooks import assert_problem, count
from tests.support.aliases import Client
from tests.support.metrics import scrape
from tests.support.payloads import EMAIL_WEBHOOK as EMAIL
from tests.support.payloads import MMS_WEBHOOK as MMS
from tests.support.payloads import SMS_WEBHOOK as SMS
from tests.support.waiting import wait_until

SEND_SMS = {k: v for k, v in SMS.items() if k != "messaging_provider_id"}
SEND_EMAIL = {k: v for k, v in EMAIL.items() if k != "xillio_id"}
POSTS = [
    ("/api/webhooks/sms", SMS),
    ("/api/webhooks/email", EMAIL),
    ("/api/messages/sms", SEND_SMS),
    ("/api/messages/email", SEND_EMAIL),
]


async def stored(db: asyncpg.Connection) -> int:
    return await count(db) + int(await db.fetchval("SELECT count(*) FROM messages"))


async def raw_request(client: Client, data: bytes, *, wait: float = 5) -> bytes:
    """Send raw bytes on a new connection; what comes back: the first response
    (headers and body) once it is whole, or all that arrived when the server
    closed the connection or `wait` seconds passed."""
    assert client.server.host is not None and client.server.port is not None
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(data)
        await writer.drain()
        received = b""
        try:
            async with asyncio.timeout(wait):
                while not whole(received) and (chunk := await reader.read(65536)):
                    received += chunk
        except TimeoutError:
            pass
        return received
    finally:
        writer.close()


def whole(received: bytes) -> bool:
    head, sep, body = received.partition(b"\r\n\r\n")
    if not sep:
        return False
    if head.startswith(b"HTTP/1.1 100 "):
        return True
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def head(path: str, length: int, *extra: str) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        f"Content-Length: {length}",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# 1. Timestamps out of range --------------------------------------------------

OUT_OF_RANGE = [
    "0001-01-01T00:00:00Z",  # asyncpg's -infinity
    "0001-01-01T00:30:00+01:00",  # before the calendar's first instant in UTC
    "1969-12-31T23:59:59Z",  # a second before the range
    "1900-06-01T12:00:00+02:00",
    "9999-12-31T23:59:59.999999Z",  # asyncpg's +infinity
    "9999-12-31T23:00:00-01:00",  # past the calendar's last instant in UTC
    "2999-01-01T00:00:00Z",
]


@pytest.mark.parametrize("timestamp", OUT_OF_RANGE)
@pytest.mark.parametrize(("path", "payload"), POSTS, ids=[p for p, _ in POSTS])
async def test_a_timestamp_out_of_range_is_400_naming_it_and_stores_nothing(
    client: Client, db: asyncpg.Connection, path: str, payload: dict[str, Any], timestamp: str
) -> None:
    response = await client.post(path, json={**payload, "timestamp": timestamp})
    await assert_problem(response, 400, "/timestamp")
    assert await stored(db) == 0


async def test_the_range_edges_and_a_skewed_clock_are_accepted(client: Client) -> None:
    soon = (datetime.now(UTC) + timedelta(hours=23)).isoformat().replace("+00:00", "Z")
    late = (datetime.now(UTC) + timedelta(hours=25)).isoformat().replace("+00:00", "Z")
    for i, timestamp in enumerate(["1970-01-01T00:00:00Z", "1970-01-01T01:00:00+01:00", soon]):
        body = {**SMS, "messaging_provider_id": f"edge-{i}", "timestamp": timestamp}
        assert (await client.post("/api/webhooks/sms", json=body)).status == 202, timestamp
    await assert_problem(
        await client.post("/api/messages/sms", json={**SEND_SMS, "timestamp": late}),
        400,
        "/timestamp",
    )


async def test_reads_survive_any_stored_timestamp(client: Client, db: asyncpg.Connection) -> None:
    """Rows written before the range was checked (or by hand) read back as the
    first and last instants of the calendar, never as a 500."""
    for i, (when, peer) in enumerate(
        [("-infinity", "+18045550001"), ("infinity", "+18045550002"), ("epoch", "+18045550003")]
    ):
        conversation_id = await db.fetchval(
            "INSERT INTO conversations (kind, participant_a, participant_b, message_count,"
            " last_activity_at) VALUES ('sms', '+12016661234', $1, 1, $2::text::timestamptz)"
            " RETURNING id",
            peer,
            when,
        )
        await db.execute(
            "INSERT INTO messages (conversation_id, direction, message_type, from_address,"
            " to_address, body, sent_at, status)"
            " VALUES ($1, 'outbound', 'sms', '+12016661234', $2, $3, $4::text::timestamptz, 'queued')",
            conversation_id,
            peer,
            f"stored {i}",
            when,
        )
    listed = await client.get("/api/conversations")
    assert listed.status == 200
    stamps = {c["participants"][1]: c["last_activity_at"] for c in (await listed.json())["items"]}
    assert stamps == {
        "+18045550001": "0001-01-01T00:00:00Z",
        "+18045550002": "9999-12-31T23:59:59.999999Z",
        "+18045550003": "1970-01-01T00:00:00Z",
    }
    for conversation_id in (1, 2, 3):
        page = await client.get(f"/api/conversations/{conversation_id}/messages")
        assert page.status == 200
        (item,) = (await page.json())["items"]
        single = await client.get(f"/api/messages/{item['id']}")
        assert single.status == 200
        assert (await single.json())["timestamp"] == item["timestamp"]


# 2. Concurrent duplicates ----------------------------------------------------


@pytest.mark.parametrize(
    ("path", "payloads"),
    [
        ("/api/webhooks/sms", [SMS]),
        ("/api/webhooks/email", [EMAIL]),
        (
            "/api/webhooks/sms",
            [{**MMS, "messaging_provider_id": f"burst-{k}"} for k in range(3)],
        ),
    ],
    ids=["sms", "email", "three-keys"],
)
async def test_of_concurrent_duplicates_exactly_one_is_told_it_created_the_row(
    client: Client, db: asyncpg.Connection, path: str, payloads: list[dict[str, Any]]
) -> None:
    copies = 40
    before = await scrape(client)
    responses = await asyncio.gather(
        *(client.post(path, json=payloads[i % len(payloads)]) for i in range(copies))
    )
    assert {r.status for r in responses} == {202}
    bodies = [await r.json() for r in responses]
    created = [b for b in bodies if not b["duplicate"]]
    assert len(created) == len(payloads)
    assert len({b["id"] for b in created}) == len(payloads)
    assert await count(db) == len(payloads)
    after = await scrape(client)
    name = "messaging_webhooks_total"
    accepted = after.total(name, outcome="accepted") - before.total(name, outcome="accepted")
    duplicate = after.total(name, outcome="duplicate") - before.total(name, outcome="duplicate")
    assert (accepted, duplicate) == (len(payloads), copies - len(payloads))


# 3. Client mistakes ----------------------------------------------------------

CORRUPT_BODIES = [
    ("gzip", b"this is not gzip at all"),
    ("gzip", gzip.compress(json.dumps(SMS).encode())[:20]),  # cut short
    ("gzip", b"\x1f\x8b\x08\x00" + b"\xff" * 40),  # a gzip header, then garbage
    ("deflate", b"not deflate either"),
    ("deflate", zlib.compress(json.dumps(SMS).encode())[:-6] + b"\x00" * 6),  # bad checksum
]


@pytest.mark.parametrize(("encoding", "raw"), CORRUPT_BODIES)
@pytest.mark.parametrize(("path", "payload"), POSTS, ids=[p for p, _ in POSTS])
async def test_a_body_that_does_not_decode_is_400(
    client: Client,
    db: asyncpg.Connection,
    path: str,
    payload: dict[str, Any],
    encoding: str,
    raw: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    response = await client.post(
        path,
        data=raw,
        headers={"Content-Type": "application/json", "Content-Encoding": encoding},
    )
    await assert_problem(response, 400)
    assert await stored(db) == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_body_that_does_decode_is_still_accepted(client: Client) -> None:
    response = await client.post(
        "/api/webhooks/sms",
        data=gzip.compress(json.dumps(SMS).encode()),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert response.status == 202


@pytest.mark.parametrize(
    "raw_id",
    [
        "9" * 4301,  # past int()'s digit limit
        "1" * 8000,
        "9223372036854775808",  # bigint max + 1
        "1" + "0" * 40,
        "0",
        "00000",
    ],
    ids=["4301-digits", "8000-digits", "bigint-plus-one", "41-digits", "zero", "zeros"],
)
async def test_an_id_no_bigint_holds_names_nothing(client: Client, raw_id: str) -> None:
    await assert_problem(await client.get(f"/api/conversations/{raw_id}/messages"), 404)
    await assert_problem(await client.get(f"/api/messages/{raw_id}"), 404)


@pytest.mark.parametrize(("path", "payload"), POSTS, ids=[p for p, _ in POSTS])
@pytest.mark.parametrize("sent", [0, 1, 50])
async def test_a_client_that_hangs_up_mid_body_is_no_server_error(
    client: Client,
    db: asyncpg.Connection,
    caplog: pytest.LogCaptureFixture,
    path: str,
    payload: dict[str, Any],
    sent: int,
) -> None:
    body = json.dumps(payload).encode()
    await raw_request(client, head(path, len(body) + 100) + body[:sent], wait=0.2)
    channel = "email" if path.endswith("email") else "sms"
    name = "messaging_webhooks_total" if "webhooks" in path else "messaging_send_requests_total"

    async def aborted() -> bool:
        samples = await scrape(client)
        return samples.total(name, channel=channel, outcome="aborted") == 1

    await wait_until(aborted, within=2)
    samples = await scrape(client)
    assert samples.total(name, outcome="aborted") == 1, samples.matching(name)
    assert samples.total(name, outcome="error") == 0, samples.matching(name)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert await stored(db) == 0


# 4. Slow request bodies ------------------------------------------------------


@pytest.fixture
async def strict_client(aiohttp_client: Any, settings: Settings) -> Client:
    app = init_app(settings.replace(body_read_timeout_ms=300, max_body_reads=2))
    return await aiohttp_client(app)  # type: ignore[no-any-return]


@pytest.mark.parametrize(("path", "payload"), POSTS, ids=[p for p, _ in POSTS])
@pytest.mark.parametrize("sent", [0, 10])
async def test_a_body_that_trickles_is_cut_with_408(
    strict_client: Client,
    db: asyncpg.Connection,
    path: str,
    payload: dict[str, Any],
    sent: int,
) -> None:
    body = json.dumps(payload).encode()
    answer = await raw_request(strict_client, head(path, 200_000) + body[:sent], wait=5)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert b"application/problem+json" in answer
    assert b"Connection: close" in answer
    assert await stored(db) == 0


@pytest.mark.slow  # the server lingers LINGER_S before it closes
async def test_after_a_408_the_connection_is_closed_soon(strict_client: Client) -> None:
    assert strict_client.server.host is not None and strict_client.server.port is not None
    reader, writer = await asyncio.open_connection(
        strict_client.server.host, strict_client.server.port
    )
    try:
        writer.write(head("/api/webhooks/sms", 1000) + b"{")
        await writer.drain()
        async with asyncio.timeout(LINGER_S + 5):
            answer = await reader.read()  # to the end: the server closes
        assert answer.startswith(b"HTTP/1.1 408 ")
    finally:
        writer.close()


async def test_requests_waiting_for_their_body_are_bounded(
    strict_client: Client, db: asyncpg.Connection
) -> None:
    assert strict_client.server.host is not None and strict_client.server.port is not None
    held = []
    for _ in range(2):
        reader, writer = await asyncio.open_connection(
            strict_client.server.host, strict_client.server.port
        )
        writer.write(head("/api/webhooks/sms", 1000) + b"{")
        await writer.drain()
        held.append((reader, writer))
    await asyncio.sleep(0.05)
    try:
        third = await raw_request(strict_client, head("/api/webhooks/email", 1000), wait=0.25)
        assert third.startswith(b"HTTP/1.1 503 "), third[:200]
        assert b"Retry-After" in third
        # A whole request needs no slot and goes through meanwhile.
        assert (await strict_client.post("/api/webhooks/sms", json=SMS)).status == 202
    finally:
        for _, writer in held:
            writer.close()
    assert await count(db) == 1


# 5. A page is bounded in bytes -----------------------------------------------


@pytest.mark.parametrize(
    ("path", "payload", "body"),
    [
        ("/api/messages/email", SEND_EMAIL, "<p>" + "x" * 99_990 + "</p>"),
        ("/api/messages/email", SEND_EMAIL, "é" * 30_000),
        ("/api/messages/sms", SEND_SMS, "y" * 100_000),
    ],
    ids=["html", "non-ascii", "sms"],
)
async def test_a_page_of_long_messages_is_bounded_and_each_is_whole_alone(
    client: Client, path: str, payload: dict[str, Any], body: str
) -> None:
    ids = []
    for _ in range(12):
        response = await client.post(path, json={**payload, "body": body})
        assert response.status == 202
        ids.append((await response.json())["id"])
    conversation_id = (await response.json())["conversation_id"]
    page = await client.get(f"/api/conversations/{conversation_id}/messages?pageSize=200")
    raw = await page.read()
    items = json.loads(raw)["items"]
    assert len(items) == 12
    assert all(i["body"] == body[:LIST_BODY_CHARS] and i["body_truncated"] for i in items)
    # Twelve messages of 100,000 characters were 1.2 M characters in a page;
    # now a page of the most rows is bounded whatever the bodies hold.
    assert len(raw) < 12 * LIST_BODY_CHARS * 6 + 12 * 1000
    assert len(raw) * MAX_PAGE_SIZE // 12 < 12 * 1024 * 1024
    whole = await client.get(f"/api/messages/{ids[0]}")
    message = await whole.json()
    assert (message["body"], message["body_truncated"]) == (body, False)
    assert message["conversation_id"] == conversation_id


async def test_a_body_at_the_bound_is_not_marked_cut(client: Client) -> None:
    for n in (LIST_BODY_CHARS - 1, LIST_BODY_CHARS, LIST_BODY_CHARS + 1):
        assert (
            await client.post("/api/messages/sms", json={**SEND_SMS, "body": "z" * n})
        ).status == 202
    items = (await (await client.get("/api/conversations/1/messages")).json())["items"]
    assert [(len(i["body"]), i["body_truncated"]) for i in items] == [
        (LIST_BODY_CHARS - 1, False),
        (LIST_BODY_CHARS, False),
        (LIST_BODY_CHARS, True),
    ]
    await assert_problem(await client.get("/api/messages/999"), 404)


# 6. The mock's script limit --------------------------------------------------


@pytest.mark.parametrize(
    ("steps", "status"), [(1000, 200), (1001, 200), (MAX_SCRIPT, 200), (MAX_SCRIPT + 1, 400)]
)
async def test_the_mock_script_limit_is_the_documented_one(
    client: Client, steps: int, status: int
) -> None:
    response = await client.patch("/mock/sms/config", json={"script": ["ok"] * steps})
    assert response.status == status, await response.text()
    if status == 400:
        await assert_problem(response, 400, "/script")
    doc = document(mock_providers=True)
    assert doc["components"]["schemas"]["MockConfigPatch"]["properties"]["script"]["maxItems"] == (
        MAX_SCRIPT
    )


# 7. Email addresses: NFC and case folding ------------------------------------

SAME_ADDRESSES = [
    ("\u00e9lise@example.com", "e\u0301lise@example.com"),  # composed / decomposed
    ("\u00c9LISE@EXAMPLE.COM", "e\u0301lise@example.com"),  # and in capitals
    ("\u212aate@example.com", "kate@example.com"),  # the Kelvin sign is a K
    ("STRASSE@example.com", "stra\u00dfe@example.com"),  # casefold: ß is ss
    ("Ann <ANN@Example.COM>", "ann@example.com"),
]


@pytest.mark.parametrize(("one", "other"), SAME_ADDRESSES)
async def test_one_address_in_two_spellings_is_one_conversation(
    client: Client, db: asyncpg.Connection, one: str, other: str
) -> None:
    us = "user@usehatchapp.com"
    to_one = await client.post("/api/messages/email", json={**SEND_EMAIL, "from": us, "to": one})
    from_other = await client.post(
        "/api/messages/email", json={**SEND_EMAIL, "from": other, "to": us}
    )
    assert (to_one.status, from_other.status) == (202, 202)
    conversation_id = (await to_one.json())["conversation_id"]
    assert (await from_other.json())["conversation_id"] == conversation_id
    assert await db.fetchval("SELECT count(*) FROM conversations") == 1
    webhook = {**EMAIL, "from": one, "to": us, "xillio_id": "spelling-1"}
    assert (await client.post("/api/webhooks/email", json=webhook)).status == 202
    stored_from = await db.fetchval("SELECT from_address FROM inbound_events")
    assert stored_from == unicodedata.normalize("NFC", stored_from.casefold())
    participants = await db.fetchrow("SELECT participant_a, participant_b FROM conversations")
    assert stored_from in tuple(participants)


# 8. Expect: 100-continue -----------------------------------------------------


@pytest.mark.parametrize(("path", "payload"), POSTS, ids=[p for p, _ in POSTS])
@pytest.mark.parametrize("length", [999_999_999, 256 * 1024 + 1])
async def test_expect_continue_with_a_body_over_the_limit_is_413_at_once(
    client: Client, path: str, payload: dict[str, Any], length: int
) -> None:
    answer = await raw_request(client, head(path, length, "Expect: 100-continue"), wait=2)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert b"100 Continue" not in answer
    assert b"application/problem+json" in answer


async def test_expect_continue_within_the_limit_is_invited(client: Client) -> None:
    body = json.dumps(SMS).encode()
    answer = await raw_request(
        client, head("/api/webhooks/sms", len(body), "Expect: 100-continue"), wait=0.5
    )
    assert answer.startswith(b"HTTP/1.1 100 Continue")


async def test_a_declared_length_over_the_limit_is_413_before_the_body(client: Client) -> None:
    answer = await raw_request(client, head("/api/webhooks/sms", 999_999_999) + b"{", wait=2)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]


# The document says what the code does ----------------------------------------

MMS_CASES = [
    ({**MMS, "attachments": []}, False),
    ({**MMS, "attachments": None}, False),
    ({k: v for k, v in MMS.items() if k != "attachments"}, False),
    ({**SMS, "attachments": ["https://example.com/a.jpg"]}, False),
    (MMS, True),
    ({**SMS, "attachments": []}, True),
    (SMS, True),
    ({**SMS, "from": "Call me maybe"}, False),
    ({**SMS, "from": "tel:+1 (804) 555-1234"}, True),
]


@pytest.mark.parametrize(("payload", "valid"), MMS_CASES)
def test_the_document_and_the_code_agree_on_attachments_and_addresses(
    payload: dict[str, Any], valid: bool
) -> None:
    schema = document(mock_providers=False)["components"]["schemas"]["SmsWebhook"]
    assert jsonschema_rs.Draft202012Validator(schema).is_valid(payload) == valid
    try:
        parse_sms_webhook(payload)
        accepted = True
    except Exception:
        accepted = False
    assert accepted == valid


async def test_a_compressed_bomb_is_413_and_an_unknown_coding_415(client: Client) -> None:
    bomb = gzip.compress(b'{"body": "' + b"0" * 50_000_000 + b'"}')
    assert len(bomb) < 100_000
    response = await client.post(
        "/api/webhooks/sms",
        data=bomb,
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    await assert_problem(response, 413)
    for coding in ("br", "zstd", "gzip, gzip", "compress"):
        response = await client.post(
            "/api/webhooks/sms",
            data=json.dumps(SMS),
            headers={"Content-Type": "application/json", "Content-Encoding": coding},
        )
        await assert_problem(response, 415)
