"""The service as `messaging serve` runs it, for tests that follow a send to its
provider: the app with its worker, on a real port chosen before start-up, so that
its provider clients reach the mock providers it serves under /mock, and the
mock's webhooks reach it. A test drives it over HTTP and looks at the database."""

from __future__ import annotations

from typing import Any

import aiohttp
import asyncpg
from aiohttp.test_utils import TestServer, unused_port

from messaging.app import init_app
from messaging.config import Settings
from messaging.http.keys import WORKER
from messaging.worker.runner import Worker
from tests.support.aliases import ServerFactory
from tests.support.metrics import Samples, parse
from tests.support.waiting import wait_until


def own_port_settings(settings: Settings, port: int) -> Settings:
    """Settings that point the provider clients and the mock's webhooks at the
    service itself on `port`."""
    own = f"http://127.0.0.1:{port}"
    return settings.replace(
        port=port,
        sms_provider_url=f"{own}/mock/sms",
        email_provider_url=f"{own}/mock/email",
        mock_webhook_url=own,
    )


async def serve_on_own_port(
    aiohttp_server: ServerFactory, settings: Settings, *, worker: bool = False
) -> TestServer:
    port = unused_port()
    return await aiohttp_server(
        init_app(own_port_settings(settings, port), worker=worker), port=port
    )


class Service:
    """A running service (with its worker and mock providers) and a session to it."""

    def __init__(self, server: TestServer, session: aiohttp.ClientSession, db: asyncpg.Connection):
        self.server = server
        self.session = session
        self.db = db

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def post(
        self, path: str, body: dict[str, Any], *, key: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        headers = {"Idempotency-Key": key} if key is not None else {}
        async with self.session.post(self.url(path), json=body, headers=headers) as response:
            return response.status, await response.json(content_type=None)

    async def send(self, body: dict[str, Any], *, key: str | None = None) -> int:
        """POST a send; the id of its message (asserting the 202)."""
        path = "/api/messages/sms" if "type" in body else "/api/messages/email"
        status, answer = await self.post(path, body, key=key)
        assert status == 202, answer
        return int(answer["id"])

    async def get(self, path: str) -> dict[str, Any]:
        async with self.session.get(self.url(path)) as response:
            assert response.status == 200, await response.text()
            body: dict[str, Any] = await response.json()
            return body

    async def mock_config(self, provider: str, **changes: Any) -> None:
        async with self.session.patch(self.url(f"/mock/{provider}/config"), json=changes) as r:
            assert r.status == 200, await r.text()

    async def deliveries(self, provider: str) -> dict[str, Any]:
        return await self.get(f"/mock/{provider}/deliveries")

    async def message(self, message_id: int) -> asyncpg.Record:
        row = await self.db.fetchrow("SELECT * FROM messages WHERE id = $1", message_id)
        assert row is not None
        return row

    async def wait_for(
        self, message_id: int, *statuses: str, attempts: int | None = None, within: float = 5
    ) -> asyncpg.Record:
        """The message once its status is one of `statuses` (after that many
        delivery attempts, if given)."""

        async def reached() -> asyncpg.Record | None:
            row = await self.message(message_id)
            if attempts is not None and row["delivery_attempts"] != attempts:
                return None
            return row if row["status"] in statuses else None

        row: asyncpg.Record = await wait_until(reached, within=within, interval=0.01)
        return row

    async def metrics(self) -> Samples:
        """The samples the service serves at /metrics."""
        async with self.session.get(self.url("/metrics")) as response:
            assert response.status == 200, await response.text()
            return parse(await response.text())

    @property
    def worker(self) -> Worker:
        """The worker the app runs (served with worker=True)."""
        return self.server.app[WORKER]
