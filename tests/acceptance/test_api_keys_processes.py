"""API keys as an operator runs them: `messaging serve` as a real process with
only DATABASE_URL (and PORT) set, keys made, listed and revoked with the
`messaging keys` commands in processes of their own."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import unused_port

from messaging.http.openapi import document
from tests.support.checks import tables_holding
from tests.support.payloads import (
    EMAIL_SEND,
    EMAIL_WEBHOOK,
    MMS_SEND,
    MMS_WEBHOOK,
    SMS_SEND,
    SMS_WEBHOOK,
)
from tests.support.processes import ServeProcess, cli, terminate_quietly
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

POSTS = [
    ("/api/messages/sms", SMS_SEND),
    ("/api/messages/sms", MMS_SEND),
    ("/api/messages/email", EMAIL_SEND),
    ("/api/webhooks/sms", SMS_WEBHOOK),
    ("/api/webhooks/sms", MMS_WEBHOOK),
    ("/api/webhooks/email", EMAIL_WEBHOOK),
]


async def keys(database_url: str, *args: str) -> Any:
    return await asyncio.to_thread(cli, database_url, "keys", *args)


async def create_key(database_url: str, name: str, scopes: str) -> str:
    made = await keys(database_url, "create", "--name", name, "--scopes", scopes)
    assert made.returncode == 0, made.stderr
    # The key alone on standard output; what it is for on standard error.
    assert re.fullmatch(r"msk_[A-Za-z0-9_-]{43}\n", made.stdout), made.stdout
    key: str = made.stdout.strip()
    assert key not in made.stderr and name in made.stderr
    return key


@pytest.fixture
def serve(database_url: str, tmp_path: Path) -> Iterator[list[ServeProcess]]:
    """`messaging serve` processes started by the test; stopped at its end."""
    started: list[ServeProcess] = []
    yield started
    terminate_quietly(started)


async def start(
    serve: list[ServeProcess], database_url: str, tmp_path: Path, **env: str
) -> ServeProcess:
    proc = ServeProcess(
        database_url, tmp_path, f"serve-{len(serve)}", unused_port(), LOG_LEVEL="DEBUG", **env
    )
    serve.append(proc)
    await proc.ready()
    return proc


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def status_of(
    http: aiohttp.ClientSession, method: str, url: str, key: str | None = None, **kw: Any
) -> int:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with http.request(method, url, headers=headers, **kw) as response:
        await response.read()
        return response.status


async def test_a_key_revoked_with_the_cli_is_refused_by_a_running_server_within_5_s(
    database_url: str, db: asyncpg.Connection, tmp_path: Path, serve: list[ServeProcess],
    http: aiohttp.ClientSession,
) -> None:  # fmt: skip
    proc = await start(serve, database_url, tmp_path, MESSAGING_ACCESS_LOG="all")
    conversations = f"{proc.base_url}/api/conversations"
    key = await create_key(database_url, "client", "send,read")

    async def answered(status: int) -> bool:
        return await status_of(http, "GET", conversations, key) == status

    # A key made while the server runs is let in (by NOTIFY, or the reload).
    await wait_until(lambda: answered(200), within=5)
    assert (
        await status_of(http, "POST", f"{proc.base_url}/api/messages/sms", key, json=SMS_SEND)
        == 202
    )

    revoked = await keys(database_url, "revoke", "client")
    committed = time.monotonic()  # the revoke's transaction committed before it exited
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout.startswith("revoked API key 'client' at ")
    await wait_until(lambda: answered(401), within=10, interval=0.01)
    took = time.monotonic() - committed
    assert took <= 5, f"the revocation took {took:.2f} s to reach the server"
    # It stays refused (no reload brings it back).
    await asyncio.sleep(0.5)
    assert await answered(401)

    again = await keys(database_url, "revoke", "client")
    assert again.returncode == 0 and "already revoked" in again.stdout
    unknown = await keys(database_url, "revoke", "nobody")
    assert unknown.returncode == 1 and "no key named 'nobody'" in unknown.stderr
    duplicate = await keys(database_url, "create", "--name", "client", "--scopes", "read")
    assert duplicate.returncode == 1 and duplicate.stdout == ""
    assert "exists already" in duplicate.stderr
    for bad in (["--name", "no spaces", "--scopes", "read"], ["--name", "x", "--scopes", "write"]):
        refused = await keys(database_url, "create", *bad)
        assert refused.returncode == 2 and refused.stdout == ""

    # Stopped, the server writes when the key was last used.
    assert proc.terminate() == 0
    listed = await keys(database_url, "list")
    assert listed.returncode == 0, listed.stderr
    header, line = listed.stdout.strip().splitlines()
    assert header.split() == ["NAME", "SCOPES", "CREATED", "LAST", "USED", "REVOKED"]
    name, scopes, created, last_used, revoked_at = line.split()
    assert (name, scopes) == ("client", "send,read")
    assert last_used != "-" and revoked_at != "-" and created <= last_used <= revoked_at

    # The key is in no table, no log line and no listing.
    assert await tables_holding(db, key) == []
    secret = key[len("msk_") :]
    assert "http_request" in proc.output()  # the access log wrote every request
    assert secret not in proc.output()
    assert secret not in listed.stdout + listed.stderr + revoked.stdout + revoked.stderr


async def test_with_a_database_url_the_api_needs_a_key_and_the_clients_flow_works_with_one(
    database_url: str, db: asyncpg.Connection, tmp_path: Path, serve: list[ServeProcess],
    http: aiohttp.ClientSession,
) -> None:  # fmt: skip
    key = await create_key(database_url, "clients", "send,read")
    proc = await start(serve, database_url, tmp_path)
    base = proc.base_url
    # Without a key: 401 on every documented /api route but the webhooks.
    for path, item in document(mock_providers=False)["paths"].items():
        concrete = path.replace("{id}", "1")
        for method in item:
            status = await status_of(http, method, f"{base}{concrete}", json={})
            if path.startswith("/api/") and not path.startswith("/api/webhooks/"):
                assert status == 401, (method, path)
            else:
                assert status != 401, (method, path)
    # No mock providers without the embedded PostgreSQL.
    assert await status_of(http, "GET", f"{base}/mock/sms/deliveries") == 404

    # api.md's flow, with the key.
    for path, body in POSTS:
        assert await status_of(http, "POST", f"{base}{path}", key, json=body) == 202, path
    await wait_until(lambda: db.fetchval("SELECT count(*) = 6 FROM messages"), within=10)
    headers = {"Authorization": f"Bearer {key}"}
    async with http.get(f"{base}/api/conversations", headers=headers) as response:
        assert response.status == 200
        assert (await response.json())["meta"]["total"] == 2
    async with http.get(f"{base}/api/conversations/1/messages", headers=headers) as response:
        assert response.status == 200
        page = await response.json()
    assert [(m["direction"], m["type"]) for m in page["items"]] == [
        ("outbound", "sms"),
        ("outbound", "mms"),
        ("inbound", "sms"),
        ("inbound", "mms"),
    ]
    assert proc.terminate() == 0


async def test_auth_none_serves_the_api_open_and_says_so_once_at_start(
    database_url: str, tmp_path: Path, serve: list[ServeProcess], http: aiohttp.ClientSession
) -> None:
    proc = await start(serve, database_url, tmp_path, MESSAGING_API_AUTH="none")
    assert await status_of(http, "GET", f"{proc.base_url}/api/conversations") == 200
    assert proc.terminate() == 0
    assert proc.output().count("MESSAGING_API_AUTH=none: anyone who reaches this service") == 1
