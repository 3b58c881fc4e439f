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

from messaging.app import init_app
from messaging.config import Settings
from messaging.http.openapi import document
from tests.pg import Server, fresh_database
from tests.support.arrange import api_key

schema = schemathesis.openapi.from_dict(document(mock_providers=True)).exclude(
    # Can make the mock hang for up to an hour on purpose, which would stall
    # every later case; its validation has tests of its own.
    method="PATCH",
    path="/mock/{provider}/config",
)


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


async def _make_key(database_url: str) -> str:
    conn = await asyncpg.connect(database_url)
    try:
        return await api_key(conn, "schemathesis", "send", "read")
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def served(pg_server: Server, pg_template: str) -> Iterator[tuple[str, str]]:
    """The base URL of the app under API keys, and a key with every scope it routes."""
    with fresh_database(pg_server, pg_template) as database_url:
        key = asyncio.run(_make_key(database_url))
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
            yield own, key


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api(case: schemathesis.Case, served: tuple[str, str]) -> None:
    base_url, key = served
    # Not positive_data_acceptance: a JSON Schema cannot say which dates exist,
    # which strings normalise to a phone number, or that an MMS needs an
    # attachment, so the document describes a superset of what is accepted
    # (payloads.py and its unit tests hold the exact rules). Every request the
    # document calls invalid must still be refused (negative_data_rejection).
    # With a valid key on every request: the routes behind it are explored, and
    # schemathesis' ignored_auth check still tries them without it (401 expected).
    case.call_and_validate(
        base_url=base_url,
        headers={"Authorization": f"Bearer {key}"},
        excluded_checks=[schemathesis.checks.positive_data_acceptance],
    )
