"""Typed application keys: what the app's cleanup contexts (app.py) put in place
for the handlers. The types are imported for the type checker only, so that the
HTTP edge does not import the worker or the service's modules at run time."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import asyncpg
from aiohttp import web

from messaging.config import Settings
from messaging.metrics import Metrics
from messaging.signatures import Verifier

if TYPE_CHECKING:
    from messaging.apikeys import KeyCache
    from messaging.ingest import EventWriter
    from messaging.providers.client import Providers
    from messaging.store.replica import Reads
    from messaging.stream.hub import StreamHub
    from messaging.worker.listener import Listener
    from messaging.worker.runner import Worker

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
POOL = web.AppKey("pool", asyncpg.Pool)
# Where reads that may be a moment old go: the replica while it is fresh, else POOL.
READS: web.AppKey[Reads] = web.AppKey("reads")
EVENT_WRITER: web.AppKey[EventWriter] = web.AppKey("event_writer")
PROVIDERS: web.AppKey[Providers] = web.AppKey("providers")
WORKER: web.AppKey[Worker] = web.AppKey("worker")
# The API keys' cache, with MESSAGING_API_AUTH=keys only.
API_KEYS: web.AppKey[KeyCache] = web.AppKey("api_keys")
# The process's one LISTEN connection, shared by the worker and the API keys'
# cache (absent with MESSAGING_LISTEN=false, or when nothing listens).
LISTENER: web.AppKey[Listener] = web.AppKey("listener")
# The signature check of each channel whose webhooks must be signed; a channel
# absent here takes its webhooks unsigned.
WEBHOOK_VERIFIERS = web.AppKey("webhook_verifiers", dict[str, Verifier])
# The list reads served at once (MESSAGING_MAX_CONCURRENT_READS).
READ_SLOTS = web.AppKey("read_slots", asyncio.Semaphore)
# The event stream's hub: the log's one reader in this process, fanned out to
# the streams it serves.
STREAM_HUB: web.AppKey[StreamHub] = web.AppKey("stream_hub")
