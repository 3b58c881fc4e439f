"""The LISTEN connection against a real PostgreSQL: routing by channel,
reconnection after the connection is killed, and after it dies silently."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import asyncpg
import pytest

from messaging.metrics import Metrics
from messaging.worker.listener import Listener
from tests.pg import Server
from tests.support.aliases import MakeWorker
from tests.support.arrange import insert_sms
from tests.support.checks import listener_backends, status_counts
from tests.support.metrics import read
from tests.support.proxy import FreezableProxy
from tests.support.waiting import wait_until

RECONNECTS = "messaging_listener_reconnects_total"


def actions(caplog: pytest.LogCaptureFixture, action: str) -> list[logging.LogRecord]:
    """The listener's log records of one action."""
    return [r for r in caplog.records if getattr(r, "action", None) == action]


class Recorder:
    def __init__(self) -> None:
        self.payloads: list[str] = []

    def __call__(self, payload: str) -> None:
        self.payloads.append(payload)


@asynccontextmanager
async def running(listener: Listener) -> AsyncIterator[Listener]:
    listener.start()
    try:
        await wait_until(lambda: listener.connected, within=5)
        yield listener
    finally:
        await listener.close()


async def test_notifications_reach_only_their_channels_subscribers(
    database_url: str, db: asyncpg.Connection
) -> None:
    inbound, outbound, also_inbound = Recorder(), Recorder(), Recorder()
    listener = Listener(database_url, Metrics())
    listener.subscribe("inbound_events", inbound)
    listener.subscribe("outbound_messages", outbound)
    listener.subscribe("inbound_events", also_inbound)
    async with running(listener):
        # Every subscriber is called once on connection: look for missed work.
        await wait_until(lambda: outbound.payloads, within=2)
        assert inbound.payloads == outbound.payloads == also_inbound.payloads == [""]
        await db.execute("SELECT pg_notify('outbound_messages', 'hello')")
        # Notifications arrive in commit order: had 'hello' reached the inbound
        # subscribers, it would be there before this marker.
        await db.execute("SELECT pg_notify('inbound_events', 'marker')")
        await wait_until(lambda: len(also_inbound.payloads) == 2, within=2)
        assert outbound.payloads == ["", "hello"]
        assert inbound.payloads == also_inbound.payloads == ["", "marker"]


async def test_a_failing_subscriber_does_not_stop_the_others(
    database_url: str, db: asyncpg.Connection
) -> None:
    def broken(payload: str) -> None:
        raise RuntimeError("bug in a subscriber")

    recorder = Recorder()
    listener = Listener(database_url, Metrics())
    listener.subscribe("inbound_events", broken)
    listener.subscribe("inbound_events", recorder)
    async with running(listener):
        await db.execute("SELECT pg_notify('inbound_events', 'x')")
        await wait_until(lambda: "x" in recorder.payloads, within=2)
        assert listener.connected


async def test_reconnects_after_the_backend_is_terminated(
    database_url: str, db: asyncpg.Connection
) -> None:
    recorder = Recorder()
    metrics = Metrics()
    listener = Listener(database_url, metrics, name="messaging-listener test:1:aa")
    listener.subscribe("inbound_events", recorder)
    async with running(listener):
        [first] = await listener_backends(db)
        await db.execute("SELECT pg_terminate_backend($1)", first)

        async def new_backend() -> list[int]:
            backends = await listener_backends(db)
            return backends if backends and backends != [first] else []

        await wait_until(new_backend, within=5)
        await wait_until(lambda: listener.connected, within=5)
        assert recorder.payloads == ["", ""]  # called again after reconnecting
        assert read(metrics).value(RECONNECTS) == 1
        ok, details = await listener.readiness()
        assert ok and details["reconnects"] == 1
        await db.execute("SELECT pg_notify('inbound_events', 'after')")
        await wait_until(lambda: "after" in recorder.payloads, within=2)


async def test_a_connection_that_dies_silently_fails_its_self_check(
    database_url: str, pg_server: Server, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="messaging.worker.listener")
    proxy = FreezableProxy(pg_server.host, pg_server.port)
    port = await proxy.start()
    dbname = urlsplit(database_url).path.lstrip("/")
    proxied = f"postgresql://{pg_server.user}@127.0.0.1:{port}/{dbname}"
    recorder = Recorder()
    metrics = Metrics()
    listener = Listener(proxied, metrics, check_interval_s=0.2, check_timeout_s=0.3)
    listener.subscribe("inbound_events", recorder)
    try:
        async with running(listener):
            # A few self-checks pass, and cause no reconnect.
            await wait_until(lambda: len(actions(caplog, "listener_check")) >= 3, within=5)
            assert read(metrics).total(RECONNECTS) == 0
            assert actions(caplog, "listener_check_failed") == []
            proxy.freeze()  # the connection stays open but nothing gets through
            await wait_until(lambda: read(metrics).total(RECONNECTS) == 1, within=5)
            assert len(actions(caplog, "listener_check_failed")) == 1
            assert proxy.connections == 2
            await db.execute("SELECT pg_notify('inbound_events', 'through the new connection')")
            await wait_until(lambda: "through the new connection" in recorder.payloads, within=2)
    finally:
        await proxy.close()


async def test_an_unreachable_database_is_retried_and_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="messaging.worker.listener")
    listener = Listener(
        "postgresql://postgres@127.0.0.1:9/none",
        Metrics(),
        reconnect_base_s=0.01,
        reconnect_cap_s=0.05,
    )
    listener.start()
    try:
        # Tried again after each failure, backing off within the cap.
        await wait_until(lambda: len(actions(caplog, "listener_connect_failed")) >= 3, within=5)
        failed = actions(caplog, "listener_connect_failed")
        assert [r.attempt for r in failed[:3]] == [1, 2, 3]  # type: ignore[attr-defined]
        assert all(0 < r.retry_in_s <= 0.05 for r in failed)  # type: ignore[attr-defined]
        ok, details = await listener.readiness()
        assert not ok
        assert details["connected"] is False and "error" in details
        assert details["reconnects"] == 0
    finally:
        await asyncio.wait_for(listener.close(), timeout=2)


async def test_worker_catches_up_after_losing_its_listener_under_load(
    make_worker: MakeWorker, db: asyncpg.Connection
) -> None:
    # No sweep to fall back on: only the notifications, and the claim made
    # after reconnecting, can find the events.
    worker = await make_worker(sweep_interval_ms=60_000)
    await wait_until(lambda: listener_backends(db), within=5)
    inserted = 0
    for round_ in range(3):
        for _ in range(5):
            inserted += len(await insert_sms(db, 40, prefix=f"r{round_}-{inserted}-"))
        [backend] = await listener_backends(db)
        await db.execute("SELECT pg_terminate_backend($1)", backend)
        # Inserted while nobody listens: these notifications are lost.
        inserted += len(await insert_sms(db, 40, prefix=f"gap{round_}-"))
        await wait_until(lambda old=backend: _replaced(db, old), within=5)  # type: ignore[misc]
    await wait_until(
        lambda: db.fetchval(
            "SELECT count(*) = $1 FROM inbound_events WHERE status = 'processed'", inserted
        ),
        within=10,
    )
    assert await status_counts(db) == {"processed": inserted}
    assert worker.listener is not None
    assert (await worker.listener.readiness())[1]["reconnects"] == 3


async def _replaced(db: asyncpg.Connection, old: int) -> bool:
    backends = await listener_backends(db)
    return bool(backends) and old not in backends
