"""Typed application keys: what the app's cleanup contexts put in place."""

from __future__ import annotations

import asyncio

import asyncpg
from aiohttp import web

from messaging.config import Settings
from messaging.metrics import Metrics
from messaging.providers.client import Providers
from messaging.store.ingest import EventWriter
from messaging.worker.runner import Worker

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
POOL = web.AppKey("pool", asyncpg.Pool)
EVENT_WRITER = web.AppKey("event_writer", EventWriter)
PROVIDERS = web.AppKey("providers", Providers)
WORKER = web.AppKey("worker", Worker)
# The list reads served at once (MESSAGING_MAX_CONCURRENT_READS).
READ_SLOTS = web.AppKey("read_slots", asyncio.Semaphore)
