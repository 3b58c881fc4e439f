"""API keys, through the real HTTP stack and a real database: which routes need
one, 401 and 403, revocation reaching the cache, the cache's expiry, and when a
key was last used."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from messaging.apikeys import KeyCache, new_key
from messaging.app import init_app
from messaging.config import Settings
from messaging.errors import DatabaseUnavailable, Unauthenticated
from messaging.http.keys import API_KEYS
from messaging.http.openapi import document
from messaging.store import api_keys
from messaging.store.db import create_pool
from tests.support.aliases import Client
from tests.support.arrange import api_key
from tests.support.checks import tables_holding
from tests.support.outage import DatabaseOutage
from tests.support.payloads import EMAIL_SEND, SMS_SEND, SMS_WEBHOOK
from tests.support.waiting import wait_until

MakeClient = Callable[..., Awaitable[Client]]

# Each route under keys, a request that would succeed with the right key, and its scope.
GUARDED: list[tuple[str, str, dict[str, Any] | None, str]] = [
    ("POST", "/api/messages/sms", SMS_SEND, "send"),
    ("POST", "/api/messages/email", EMAIL_SEND, "send"),
    ("GET", "/api/conversations", None, "read"),
    ("GET", "/api/conversations/1/messages", None, "read"),
    ("GET", "/api/messages/1", None, "read"),
]
OPEN = [
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
]


@pytest.fixture
async def keyed(aiohttp_client: Any, settings: Settings) -> MakeClient:
    """A test client of the app under API keys (make keys before: the cache loads
    them at start; later ones arrive by NOTIFY)."""

    async def make(**changes: Any) -> Client:
        app = init_app(settings.replace(api_auth="keys", **changes))
        client: Client = await aiohttp_client(app)
        return client

    return make


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def call(
    client: Client, method: str, path: str, body: dict[str, Any] | None, key: str | None
) -> tuple[int, dict[str, Any], str | None]:
    response = await client.request(
        method, path, json=body, headers=bearer(key) if key is not None else {}
    )
    answer = await response.json(content_type=None)
    return response.status, answer, response.headers.get("WWW-Authenticate")


async def test_every_guarded_route_without_a_key_is_401_with_a_bearer_challenge(
    keyed: MakeClient, db: asyncpg.Connection
) -> None:
    client = await keyed()
    for method, path, body, _scope in GUARDED:
        response = await client.request(method, path, json=body)
        assert response.status == 401, path
        assert response.content_type == "application/problem+json"
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="messaging"'
        problem = await response.json()
        assert problem["status"] == 401 and problem["instance"] == path
    # Nothing was stored by the refused sends.
    assert await db.fetchval("SELECT count(*) FROM messages") == 0


async def test_a_wrong_key_or_another_scheme_is_401(
    keyed: MakeClient, db: asyncpg.Connection
) -> None:
    await api_key(db, "good", "send", "read")
    client = await keyed()
    for key in (new_key(), "msk_", "not-even-our-prefix", "x" * 5000):
        status, problem, challenge = await call(client, "GET", "/api/conversations", None, key)
        assert status == 401, key[:20]
        assert challenge == 'Bearer realm="messaging", error="invalid_token"'
        assert problem["detail"] == "The API key is not valid."
    for header in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "msk_abc"):
        response = await client.get("/api/conversations", headers={"Authorization": header})
        assert response.status == 401, header
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="messaging"'


async def test_the_right_scope_is_let_in_and_another_is_403(
    keyed: MakeClient, db: asyncpg.Connection
) -> None:
    names = {"send": "sender", "read": "reader"}
    keys = {scope: await api_key(db, name, scope) for scope, name in names.items()}
    both = await api_key(db, "both", "send", "read")
    admin = await api_key(db, "operator", "admin")
    client = await keyed()
    for method, path, body, scope in GUARDED:
        other = "read" if scope == "send" else "send"
        status, problem, challenge = await call(client, method, path, body, keys[other])
        assert status == 403, (path, other)
        assert challenge == f'Bearer realm="messaging", error="insufficient_scope", scope="{scope}"'
        assert problem["detail"] == (
            f"The API key {names[other]!r} lacks the scope {scope!r} this route needs."
        )
        assert (await call(client, method, path, body, admin))[0] == 403
        for key in (keys[scope], both):
            status, answer, _ = await call(client, method, path, body, key)
            assert status in (200, 202), (path, answer)


async def test_the_webhooks_and_operations_routes_need_no_key(keyed: MakeClient) -> None:
    client = await keyed()
    assert (await client.post("/api/webhooks/sms", json=SMS_WEBHOOK)).status == 202

    async def ready() -> bool:
        # Ready once the LISTEN connection (the keys' NOTIFY) is up.
        return (await client.get("/readyz")).status == 200

    await wait_until(ready, within=10)
    for method, path in OPEN:
        assert (await client.request(method, path)).status == 200, path
    checks = (await (await client.get("/readyz")).json())["checks"]
    assert checks["api_keys"] == {
        "ok": True,
        "keys": 0,
        "loaded_s_ago": checks["api_keys"]["loaded_s_ago"],
    }
    assert checks["listener"]["channels"] == ["api_keys", "stream_events"]


async def test_the_document_says_which_operations_need_which_scope(
    keyed: MakeClient, db: asyncpg.Connection
) -> None:
    """Every operation the document puts under a scope answers 401 without a key
    and 403 with a key of the other scope; every other one lets a keyless
    request through."""
    keys = {
        "send": await api_key(db, "sender", "send"),
        "read": await api_key(db, "reader", "read"),
    }
    client = await keyed()
    # The mock providers' routes are left out: they are not the API (and their
    # inbound route would call a webhook URL outside the test).
    for path, item in document(mock_providers=False)["paths"].items():
        concrete = path.replace("{id}", "1")
        for method, operation in item.items():
            response = await client.request(method, concrete, json={})
            if "security" not in operation:
                assert response.status != 401, (method, path)
                continue
            assert response.status == 401, (method, path)
            assert "401" in operation["responses"] and "403" in operation["responses"]
            [[scope]] = [s["bearerApiKey"] for s in operation["security"]]
            other = "read" if scope == "send" else "send"
            response = await client.request(method, concrete, json={}, headers=bearer(keys[other]))
            assert response.status == 403, (method, path)


async def test_auth_none_lets_every_route_through(client: Client) -> None:
    for method, path, body, _scope in GUARDED:
        response = await client.request(method, path, json=body)
        assert response.status in (200, 202, 404), path


async def test_a_key_revoked_while_serving_is_401_soon_after(
    keyed: MakeClient, db: asyncpg.Connection
) -> None:
    key = await api_key(db, "client", "read")
    client = await keyed()
    assert (await call(client, "GET", "/api/conversations", None, key))[0] == 200
    revocation = await api_keys.revoke(db, "client")
    assert revocation is not None and revocation.now_revoked

    async def refused() -> bool:
        return (await call(client, "GET", "/api/conversations", None, key))[0] == 401

    # By NOTIFY, well before the cache's own expiry; the bound is a timeout only.
    await wait_until(refused, within=5)
    _status, _problem, challenge = await call(client, "GET", "/api/conversations", None, key)
    assert challenge == 'Bearer realm="messaging", error="invalid_token"'

    async def told_why() -> bool:
        _status, problem, _ = await call(client, "GET", "/api/conversations", None, key)
        return bool(problem["detail"] == "The API key 'client' was revoked.")

    # Once the cache has reloaded, the client is told why.
    await wait_until(told_why, within=5)
    assert (await api_keys.revoke(db, "client")) == api_keys.Revocation(
        revocation.revoked_at, now_revoked=False
    )


async def test_a_key_made_while_serving_is_let_in_soon_after(
    keyed: MakeClient, db: asyncpg.Connection
) -> None:
    client = await keyed()
    key = await api_key(db, "late", "read")

    async def admitted() -> bool:
        return (await call(client, "GET", "/api/conversations", None, key))[0] == 200

    await wait_until(admitted, within=5)


async def test_a_revoked_key_is_told_it_was_revoked(
    keyed: MakeClient, db: asyncpg.Connection
) -> None:
    key = await api_key(db, "old", "send")
    await api_keys.revoke(db, "old")
    client = await keyed()
    status, problem, _ = await call(client, "POST", "/api/messages/sms", SMS_SEND, key)
    assert status == 401
    assert problem["detail"] == "The API key 'old' was revoked."


async def test_without_listen_the_reload_still_revokes(database_url: str) -> None:
    """The cache's own reload is the backstop when no NOTIFY comes (LISTEN off,
    or a notification lost)."""
    db = await asyncpg.connect(database_url)
    pool = await create_pool(database_url, size=2)
    cache = KeyCache(refresh_s=0.1)
    try:
        key = await api_key(db, "client", "read")
        await cache.start(pool)
        assert cache.authenticate(key).name == "client"
        await api_keys.revoke(db, "client")

        def refused() -> bool:
            try:
                cache.authenticate(key)
            except Unauthenticated:
                return True
            return False

        await wait_until(refused, within=5)
    finally:
        await cache.close()
        await pool.close()
        await db.close()


async def test_keys_that_cannot_be_reloaded_expire_into_503(
    database_url: str, database_outage: DatabaseOutage
) -> None:
    db = await asyncpg.connect(database_url)
    key = await api_key(db, "client", "read")
    await db.close()
    pool = await create_pool(database_url, size=2)
    cache = KeyCache(refresh_s=0.05, max_age_s=0.3)
    try:
        await cache.start(pool)
        assert cache.authenticate(key).name == "client"
        async with database_outage:

            def expired() -> bool:
                try:
                    cache.authenticate(key)
                except DatabaseUnavailable:
                    return True
                return False

            await wait_until(expired, within=5)
            ok, details = await cache.readiness()
            assert not ok and "error" in details

        # Back: loaded again, and the key works again.
        async def ready() -> bool:
            return (await cache.readiness())[0]

        await wait_until(ready, within=10)
        assert cache.authenticate(key).name == "client"
    finally:
        await cache.close()
        await pool.close()


async def test_last_use_is_written_off_the_request_path(
    aiohttp_client: Any, settings: Settings, db: asyncpg.Connection
) -> None:
    key = await api_key(db, "client", "read")
    app = init_app(settings.replace(api_auth="keys"))
    client: Client = await aiohttp_client(app)
    assert (await call(client, "GET", "/api/conversations", None, key))[0] == 200
    # Not by the request: the minute's flush has not come.
    assert await db.fetchval("SELECT last_used_at FROM api_keys") is None
    await client.close()  # the cache's close flushes
    first = await db.fetchval("SELECT last_used_at FROM api_keys")
    assert first is not None
    key_id = await db.fetchval("SELECT id FROM api_keys")
    # Another use within the minute (here: another process's) writes nothing.
    await api_keys.record_last_used(db, {key_id: first.timestamp() + 30})
    assert await db.fetchval("SELECT last_used_at FROM api_keys") == first
    await api_keys.record_last_used(db, {key_id: first.timestamp() + 61})
    assert (await db.fetchval("SELECT last_used_at FROM api_keys")).timestamp() == pytest.approx(
        first.timestamp() + 61
    )


async def test_the_key_is_nowhere_in_the_database_or_the_logs(
    keyed: MakeClient, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key = await api_key(db, "client", "send", "read")
    client = await keyed(access_log="all")
    assert (await call(client, "POST", "/api/messages/sms", SMS_SEND, key))[0] == 202
    assert (await call(client, "GET", "/api/conversations", None, key))[0] == 200
    assert (await call(client, "GET", "/api/conversations", None, key[:-1] + "x"))[0] == 401
    await client.close()
    assert await tables_holding(db, key) == []
    assert await tables_holding(db, key[len("msk_") :]) == []
    logged = caplog.text + " ".join(str(vars(r)) for r in caplog.records)
    assert "http_request" in logged  # the access log did write lines
    assert key[len("msk_") :] not in logged
    assert key[len("msk_") : -1] not in logged


async def test_routes_of_an_app_under_none_are_not_wrapped(settings: Settings) -> None:
    """With none, the handlers are routed as they are (no check on their path)."""
    from messaging.http import conversations, sends

    app = init_app(settings)
    handlers = {
        route.handler
        for resource in app.router.resources()
        for route in resource
        if not isinstance(resource, web.PrefixedSubAppResource)
    }
    for r in sends.routes() + conversations.routes():
        assert r.handler in handlers
    assert API_KEYS not in app


async def test_a_send_without_a_key_is_refused_before_its_body_is_invited(
    keyed: MakeClient, db: asyncpg.Connection
) -> None:
    client = await keyed()
    response = await client.post("/api/messages/sms", json=SMS_SEND, expect100=True)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="messaging"'
    reader = await api_key(db, "reader", "read")
    await wait_until(lambda: _admitted(client, reader), within=5)
    response = await client.post(
        "/api/messages/sms", json=SMS_SEND, expect100=True, headers=bearer(reader)
    )
    assert response.status == 403
    assert await db.fetchval("SELECT count(*) FROM messages") == 0


async def _admitted(client: Client, key: str) -> bool:
    return (await call(client, "GET", "/api/conversations", None, key))[0] == 200
