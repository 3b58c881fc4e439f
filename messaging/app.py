"""The aiohttp applications: routes, middlewares, and the resources they own.

init_app() is the service; init_mock_app() the mock providers alone. Every
resource (the pool, the ingest writers, the provider clients' HTTP session, the
worker) is opened and closed in a cleanup context, so that shutdown closes them
in reverse order and nothing outlives the app: the worker stops (finishing its
batch and its sends) before the provider clients' session and the pool close.
The worker is handed the pool and the provider clients; `messaging worker`
opens the same two for a worker without an app.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from messaging.config import WEBHOOK_SECRETS_VARIABLES, Settings
from messaging.http import conversations, health, openapi, sends, webhooks
from messaging.http.access_log import ACCESS_LOG, AccessLog
from messaging.http.body import BODY_LIMITS, HANDLER_ARGS, BodyLimits
from messaging.http.keys import (
    EVENT_WRITER,
    METRICS,
    POOL,
    PROVIDERS,
    READ_SLOTS,
    SETTINGS,
    WEBHOOK_VERIFIERS,
    WORKER,
)
from messaging.http.middleware import edge
from messaging.ingest import EventWriter
from messaging.metrics import Metrics
from messaging.mock.providers import mock_providers
from messaging.providers.client import open_providers
from messaging.signatures import Verifier
from messaging.store.db import create_pool
from messaging.worker.runner import Worker

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
    app[WEBHOOK_VERIFIERS] = {
        channel: Verifier(keys)
        for channel in WEBHOOK_SECRETS_VARIABLES
        if (keys := settings.webhook_secrets(channel))
    }
    app.on_startup.append(_say_which_webhooks_are_unsigned)
    app.add_routes(sends.routes())
    app.add_routes(webhooks.routes())
    app.add_routes(conversations.routes())
    app.add_routes(health.routes())
    app.add_routes(openapi.routes(mock_providers=settings.mock_providers))
    if settings.mock_providers:
        app.add_subapp("/mock", mock_providers(settings))
    app.cleanup_ctx.append(_access_log)
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_providers)
    app.cleanup_ctx.append(_event_writer)
    if worker:
        app.cleanup_ctx.append(_worker)
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


async def _worker(app: web.Application) -> AsyncIterator[None]:
    worker = Worker(app[SETTINGS], app[POOL], app[METRICS], app[PROVIDERS])
    app[WORKER] = worker
    app[health.READINESS_CHECKS].append(("listener", worker.readiness))
    await worker.start()
    yield
    await worker.stop()
