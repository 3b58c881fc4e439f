"""The aiohttp applications: routes, middlewares, and the resources they own.

init_app() is the service; init_mock_app() the mock providers alone;
init_worker_app() the health and metrics routes of `messaging worker`. Every
resource (the pool, the ingest writers, the provider clients' HTTP session, the
event stream's hub, the worker) is opened and closed in a cleanup context, so
that shutdown closes them in reverse order and nothing outlives the app: the
worker stops (finishing its batch and its sends) before the provider clients'
session and the pool close.
The worker is handed the pool and the provider clients; `messaging worker`
opens the same two for a worker without an app.

The app owns the process's one LISTEN connection (unless MESSAGING_LISTEN is
off), shared by the event stream's hub, the worker and the API keys' cache: it
is made here, its subscribers subscribe in their cleanup contexts, and the last
context starts it once they all have, so that `serve --no-worker` still hears
the stream's log and key revocations. Only the process's heartbeat (its row in
the processes table, for the operator's view) comes after: it reports on the
listener.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from aiohttp import web

from messaging.apikeys import CHANNEL as API_KEYS_CHANNEL
from messaging.apikeys import KeyCache
from messaging.config import WEBHOOK_SECRETS_VARIABLES, Settings
from messaging.heartbeat import Heartbeat
from messaging.http import admin, auth, conversations, events, health, openapi, sends, webhooks
from messaging.http.access_log import ACCESS_LOG, AccessLog
from messaging.http.body import BODY_LIMITS, HANDLER_ARGS, BodyLimits
from messaging.http.keys import (
    API_KEYS,
    EVENT_WRITER,
    LISTENER,
    METRICS,
    POOL,
    PROVIDERS,
    READ_SLOTS,
    READS,
    SETTINGS,
    STREAM_HUB,
    WEBHOOK_VERIFIERS,
    WORKER,
)
from messaging.http.middleware import edge
from messaging.ingest import EventWriter
from messaging.metrics import Metrics
from messaging.mock.providers import mock_providers
from messaging.providers.client import open_providers
from messaging.signatures import Verifier
from messaging.store import stream_events
from messaging.store.db import create_pool
from messaging.store.replica import Reads, Replica
from messaging.stream.hub import StreamHub
from messaging.worker.listener import Listener
from messaging.worker.runner import Worker, new_processor_id

log = logging.getLogger("messaging")


def init_app(settings: Settings, *, worker: bool = False) -> web.Application:
    """Build the app for a settings object whose database_url is resolved; with
    worker=True (what `messaging serve` runs) the app also runs a worker."""
    if settings.database_url is None:
        raise ValueError("init_app needs settings.database_url (the CLI resolves it)")
    app = web.Application(
        middlewares=[edge],
        client_max_size=settings.max_body_bytes,
        handler_args=HANDLER_ARGS,
    )
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[BODY_LIMITS] = _body_limits(settings)
    app[READ_SLOTS] = asyncio.Semaphore(settings.max_concurrent_reads)
    app[ACCESS_LOG] = AccessLog(settings.access_log)
    app[health.READINESS_CHECKS] = []
    keys = KeyCache() if settings.api_auth == "keys" else None
    if keys is not None:
        app[API_KEYS] = keys
    if settings.listen:
        app[LISTENER] = Listener(
            settings.listen_database_url or settings.database_url,
            app[METRICS],
            name=f"messaging-listener {new_processor_id()}",
        )
    app[WEBHOOK_VERIFIERS] = {
        channel: Verifier(secret_keys)
        for channel in WEBHOOK_SECRETS_VARIABLES
        if (secret_keys := settings.webhook_secrets(channel))
    }
    app.on_startup.append(_say_which_webhooks_are_unsigned)
    app.on_shutdown.append(_end_streams)
    app.add_routes(auth.require("send", sends.routes(), keys))
    app.add_routes(webhooks.routes())
    app.add_routes(auth.require("read", conversations.routes(), keys))
    app.add_routes(auth.require("read", events.routes(), keys))
    app.add_routes(auth.require("admin", admin.routes(), keys))
    app.add_routes(health.routes())
    app.add_routes(openapi.routes(mock_providers=settings.mock_providers))
    if settings.mock_providers:
        app.add_subapp("/mock", mock_providers(settings))
    app.cleanup_ctx.append(_access_log)
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_reads)
    app.cleanup_ctx.append(_providers)
    app.cleanup_ctx.append(_event_writer)
    app.cleanup_ctx.append(_stream)
    if keys is not None:
        app.cleanup_ctx.append(_api_keys)
    if worker:
        app.cleanup_ctx.append(_worker)
    if LISTENER in app:
        app.cleanup_ctx.append(_listener)
    app.cleanup_ctx.append(_heartbeat)
    return app


def init_mock_app(settings: Settings) -> web.Application:
    """The mock providers alone (`messaging mock-providers`), at the same paths as
    under the service, so that only the host and port of the URLs change."""
    app = web.Application(
        middlewares=[edge], client_max_size=settings.max_body_bytes, handler_args=HANDLER_ARGS
    )
    app[BODY_LIMITS] = _body_limits(settings)
    app.add_subapp("/mock", mock_providers(settings))
    return app


def init_worker_app(
    settings: Settings, pool: asyncpg.Pool, metrics: Metrics, worker: Worker
) -> web.Application:
    """/healthz, /readyz and /metrics of a standalone worker (MESSAGING_WORKER_PORT):
    health.py's routes on the worker's pool and metrics, ready when the database
    is and the worker's listener listens, as under `serve`. The worker, the pool
    and the metrics are its caller's (cli._run_worker), open before the app starts
    and closed after it stops, so that the routes answer while the worker drains."""
    app = web.Application(middlewares=[edge])
    app[SETTINGS] = settings
    app[POOL] = pool
    app[METRICS] = metrics
    app[ACCESS_LOG] = AccessLog(settings.access_log)
    app[health.READINESS_CHECKS] = []
    app[health.READINESS_CHECKS].append(("listener", worker.readiness))
    app.add_routes(health.routes())
    app.cleanup_ctx.append(_access_log)
    return app


def _body_limits(settings: Settings) -> BodyLimits:
    return BodyLimits(
        timeout_s=settings.body_read_timeout_ms / 1000, max_waiting=settings.max_body_reads
    )


async def _say_which_webhooks_are_unsigned(app: web.Application) -> None:
    """Once at start: a warning for each channel that takes unsigned webhooks."""
    for channel, variable in WEBHOOK_SECRETS_VARIABLES.items():
        if channel not in app[WEBHOOK_VERIFIERS]:
            log.warning(
                "%s webhooks are accepted unsigned: %s is not set",
                channel,
                variable,
                extra={"action": "webhooks_unsigned", "channel": channel, "variable": variable},
            )


async def _access_log(app: web.Application) -> AsyncIterator[None]:
    app[ACCESS_LOG].start()
    yield
    await app[ACCESS_LOG].close()


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    assert settings.database_url is not None
    app[POOL] = await create_pool(settings.database_url, size=settings.pool_size)
    yield
    await app[POOL].close()


async def _reads(app: web.Application) -> AsyncIterator[None]:
    """The replica (MESSAGING_READ_DATABASE_URL), its pool and its lag check;
    without one, reads go to the primary's pool."""
    settings = app[SETTINGS]
    replica = None
    if settings.read_database_url:
        replica = Replica(
            settings.read_database_url,
            app[POOL],
            app[METRICS],
            max_lag_s=settings.read_max_lag_ms / 1000,
            # The reads served at once, and the lag check.
            pool_size=settings.max_concurrent_reads + 1,
        )
        await replica.open()
        app[health.READINESS_CHECKS].append(("replica", _replica_details(replica)))
    app[READS] = Reads(app[POOL], app[METRICS], replica)
    yield
    if replica is not None:
        await replica.close()


def _replica_details(replica: Replica) -> health.ReadinessCheck:
    """The replica's state in /readyz, never failing it: reads fall back."""

    async def check() -> tuple[bool, dict[str, Any]]:
        return True, replica.details()

    return check


async def _providers(app: web.Application) -> AsyncIterator[None]:
    async with open_providers(app[SETTINGS], app[METRICS]) as providers:
        app[PROVIDERS] = providers
        yield


async def _event_writer(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    writer = EventWriter(
        app[POOL],
        app[METRICS],
        writers=settings.ingest_writers,
        max_batch=settings.ingest_max_batch,
        group_commit=settings.group_commit,
    )
    writer.start()
    app[EVENT_WRITER] = writer
    yield
    await writer.close()


async def _stream(app: web.Application) -> AsyncIterator[None]:
    """The event stream's hub, woken by the log's NOTIFY, its fallback read at
    the sweep's interval. Its streams end at shutdown, before aiohttp waits for
    the handlers to finish (on_shutdown), so that a stopping server is not held
    open by its consumers."""
    settings = app[SETTINGS]
    hub = StreamHub(
        app[POOL],
        app[METRICS],
        events.render,
        max_streams=settings.max_streams,
        buffer_events=settings.stream_buffer_events,
        fallback_interval_s=settings.sweep_interval_ms / 1000,
        body_chars=events.BODY_CHARS,
    )
    if LISTENER in app:
        app[LISTENER].subscribe(stream_events.CHANNEL, hub.wake)
    app[STREAM_HUB] = hub
    hub.start()
    yield
    await hub.close()


async def _end_streams(app: web.Application) -> None:
    app[STREAM_HUB].shutdown()


async def _api_keys(app: web.Application) -> AsyncIterator[None]:
    keys = app[API_KEYS]
    if LISTENER in app:
        app[LISTENER].subscribe(API_KEYS_CHANNEL, keys.changed)
    app[health.READINESS_CHECKS].append(("api_keys", keys.readiness))
    await keys.start(app[POOL])
    yield
    await keys.close()


async def _worker(app: web.Application) -> AsyncIterator[None]:
    worker = Worker(
        app[SETTINGS], app[POOL], app[METRICS], app[PROVIDERS], listener=app.get(LISTENER)
    )
    app[WORKER] = worker
    app[health.READINESS_CHECKS].append(("listener", worker.readiness))
    await worker.start()
    yield
    await worker.stop()


async def _listener(app: web.Application) -> AsyncIterator[None]:
    """Last: every subscriber has subscribed. Closed first, before the worker
    stops (its loops finish without wake-ups) and the keys' cache closes."""
    listener = app[LISTENER]
    if WORKER not in app:
        app[health.READINESS_CHECKS].append(("listener", _enabled(listener)))
    listener.start()
    yield
    await listener.close()


async def _heartbeat(app: web.Application) -> AsyncIterator[None]:
    """After the listener has started, so that it reports on it; stopped first,
    so that a stopping process leaves the operator's view at once (its row is
    deleted) rather than showing its listener closed. A process with a worker
    beats under the worker's processor id, the id its claims carry."""
    settings = app[SETTINGS]
    heartbeat = Heartbeat(
        app[POOL],
        process_id=app[WORKER].processor_id if WORKER in app else new_processor_id(),
        kind="serve" if WORKER in app else "api",
        period_s=settings.heartbeat_secs,
        listener=app.get(LISTENER),
    )
    heartbeat.start()
    yield
    await heartbeat.stop()


def _enabled(listener: Listener) -> health.ReadinessCheck:
    """The listener's readiness in the worker's shape ({"enabled": true, ...})."""

    async def check() -> tuple[bool, dict[str, Any]]:
        ok, details = await listener.readiness()
        return ok, {"enabled": True, **details}

    return check
