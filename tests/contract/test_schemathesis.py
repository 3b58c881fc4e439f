"""schemathesis against the OpenAPI document and the real app on a real socket:
no generated request may get a 5xx, and every response must conform to the
document (status, content type, headers, body schema)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import asyncpg
import pytest
import schemathesis
from aiohttp import web
from aiohttp.test_utils import unused_port
from hypothesis import HealthCheck, settings

from messaging.apikeys import key_hash, new_key
from messaging.app import init_app
from messaging.config import Settings
from messaging.http.openapi import document
from messaging.store import api_keys
from tests.pg import Server, fresh_database

schema = (
    schemathesis.openapi.from_dict(document(mock_providers=True))
    .exclude(
        # Can make the mock hang for up to an hour on purpose, which would stall
        # every later case; its validation has tests of its own.
        method="PATCH",
        path="/mock/{provider}/config",
    )
    # A stream answered 200 never ends, and schemathesis reads a body to its
    # end; the stream's refusals have tests of their own (tests/integration/test_stream.py).
    .exclude(method="GET", path="/api/events")
)


# The served app's key: made here, since schemathesis asks ApiKey for it as it
# collects the cases; the `served` fixture stores it.
KEY = new_key()


@schema.auth()
class ApiKey:
    """The key on every case, through schemathesis' own auth: so that the cases
    it strips the key from on purpose (a negative case for a missing
    Authorization, the ignored_auth probe) go without it, and the rest with it."""

    def get(self, case: schemathesis.Case, context: schemathesis.AuthContext) -> str:
        return KEY

    def set(self, case: schemathesis.Case, data: str, context: schemathesis.AuthContext) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


class LiveServer:
    """The app served on 127.0.0.1 by an event loop in a thread of its own, for
    schemathesis' synchronous client."""

    def __init__(self, app: web.Application, port: int) -> None:
        self._app = app
        self._port = port
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Future[None] | None = None
        self._thread = threading.Thread(target=self._run, name="live-server", daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the live server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set_result, None)
        self._thread.join(30)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve())
        self._loop.close()

    async def _serve(self) -> None:
        runner = web.AppRunner(self._app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self._port).start()
        self._stop = self._loop.create_future()
        self._ready.set()
        try:
            await self._stop
        finally:
            await runner.cleanup()


async def _store_key(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        assert await api_keys.insert(conn, "schemathesis", ("send", "read", "admin"), key_hash(KEY))
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def base_url(pg_server: Server, pg_template: str) -> Iterator[str]:
    """The base URL of the app under API keys, KEY stored with every scope it routes."""
    with fresh_database(pg_server, pg_template) as database_url:
        asyncio.run(_store_key(database_url))
        port = unused_port()
        own = f"http://127.0.0.1:{port}"
        app = init_app(
            Settings(
                database_url=database_url,
                api_auth="keys",
                mock_providers=True,
                port=port,
                sms_provider_url=f"{own}/mock/sms",
                email_provider_url=f"{own}/mock/email",
                mock_webhook_url=own,
                mock_seed=1,
                log_level="WARNING",
            )
        )
        with LiveServer(app, port):
            yield own


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api(case: schemathesis.Case, base_url: str) -> None:
    # Not positive_data_acceptance: a JSON Schema cannot say which dates exist,
    # which strings normalise to a phone number, or that an MMS needs an
    # attachment, so the document describes a superset of what is accepted
    # (payloads.py and its unit tests hold the exact rules). Every request the
    # document calls invalid must still be refused (negative_data_rejection).
    # The app runs under API keys, and every case carries the key (ApiKey) but
    # those schemathesis strips it from to see them refused (401).
    response = case.call_and_validate(
        base_url=base_url,
        excluded_checks=[schemathesis.checks.positive_data_acceptance],
    )
    # The key has every scope the document names: a case of valid data answered
    # 401 or 403 would mean the cases never got past the check and explored
    # nothing behind it.
    if case.meta is None or not case.meta.generation.mode.is_negative:
        assert response.status_code not in (401, 403), (case.method, case.path)
