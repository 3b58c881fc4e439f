"""The Worker: owner of the listener, the inbound loop, the delivery loop and
the sweep.

start() launches them; stop() stops claiming, lets the batch in hand and the
sends in flight finish, stops the sweep, and closes the LISTEN connection, in
that order, so that a clean shutdown leaves no event in processing and no send
in sending. Any number of workers (processes or apps) may run against one
database: claims use SKIP LOCKED, and each worker process has its own processor
id.

The worker is handed its resources, the pool and the provider clients (their
HTTP session), by whoever owns the process's: the app's cleanup contexts under
`messaging serve`, `_run_worker` under `messaging worker`. It owns only its
tasks and its LISTEN connection, so that one HTTP session serves a process and
its closing order stays with the process's owner; under `messaging serve` the
app owns the LISTEN connection too (shared with the API keys' cache), and the
worker subscribes to it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from typing import Any

import asyncpg

from messaging.config import Settings
from messaging.metrics import Metrics
from messaging.providers.client import Providers
from messaging.store.inbound_events import CHANNEL as INBOUND_CHANNEL
from messaging.store.messages import CHANNEL as OUTBOUND_CHANNEL
from messaging.worker.backoff import RetryPolicy
from messaging.worker.delivery import DeliveryLoop
from messaging.worker.inbound import InboundLoop
from messaging.worker.listener import Listener
from messaging.worker.retention import Pruner, RetentionPolicy
from messaging.worker.sweep import Sweeper, event_queue, send_queue

log = logging.getLogger(__name__)


def new_processor_id() -> str:
    """hostname:pid:random, unique per worker even across restarts and hosts."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        metrics: Metrics,
        providers: Providers,
        *,
        listener: Listener | None = None,
        listener_check_interval_s: float = 30.0,
        listener_check_timeout_s: float = 5.0,
        stop_timeout_s: float = 30.0,
    ) -> None:
        if settings.database_url is None:
            raise ValueError("the worker needs settings.database_url (the CLI resolves it)")
        self.processor_id = new_processor_id()
        self._claim_timeout_ms = settings.claim_timeout_secs * 1000
        self._provider_timeout_ms = settings.provider_timeout_ms
        self._stop_timeout_s = stop_timeout_s
        retry = RetryPolicy(
            max_attempts=settings.max_retries,
            base_s=settings.backoff_base_ms / 1000,
            cap_s=settings.backoff_cap_ms / 1000,
        )
        self.inbound = InboundLoop(
            pool,
            metrics,
            processor_id=self.processor_id,
            batch_size=settings.batch_size,
            retry=retry,
            batches_in_flight=settings.batches_in_flight,
        )
        self.delivery = DeliveryLoop(
            pool,
            providers,
            metrics,
            processor_id=self.processor_id,
            concurrency=settings.send_concurrency,
            retry=retry,
        )
        self.sweeper = Sweeper(
            pool,
            metrics,
            interval_s=settings.sweep_interval_ms / 1000,
            claim_timeout_s=settings.claim_timeout_secs,
            max_attempts=retry.max_attempts,
            events=event_queue(retry, self.inbound.wake),
            sends=send_queue(self.delivery.wake),
            pruner=Pruner(pool, metrics, RetentionPolicy.from_settings(settings)),
        )
        self.listener: Listener | None = listener
        # A listener handed in is its owner's (the app's, shared with the API
        # keys' cache) to start and close; the worker only subscribes to it.
        self._owns_listener = False
        if listener is None and settings.listen:
            self.listener = Listener(
                settings.listen_database_url or settings.database_url,
                metrics,
                name=f"messaging-listener {self.processor_id}",
                check_interval_s=listener_check_interval_s,
                check_timeout_s=listener_check_timeout_s,
            )
            self._owns_listener = True
        if self.listener is not None:
            self.listener.subscribe(INBOUND_CHANNEL, self.inbound.wake)
            self.listener.subscribe(OUTBOUND_CHANNEL, self.delivery.wake)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        if self._claim_timeout_ms <= self._provider_timeout_ms:
            log.warning(
                "MESSAGING_CLAIM_TIMEOUT_SECS is not longer than MESSAGING_PROVIDER_TIMEOUT_MS:"
                " the sweep may take back sends still in flight and send them again (the"
                " provider's idempotency key keeps that to one delivery, at the cost of requests)",
                extra={"action": "config_warning"},
            )
        if self.listener is not None and self._owns_listener:
            self.listener.start()
        self._tasks = [
            asyncio.create_task(self.inbound.run(), name="inbound-loop"),
            asyncio.create_task(self.delivery.run(), name="delivery-loop"),
            asyncio.create_task(self.sweeper.run(), name="sweep"),
        ]
        log.info(
            "worker started",
            extra={
                "action": "worker_started",
                "processor_id": self.processor_id,
                "listen": self.listener is not None,
            },
        )

    async def stop(self) -> None:
        """Stop claiming, finish the batch in hand and the sends in flight, close
        connections."""
        self.inbound.stop()
        self.delivery.stop()
        self.sweeper.stop()
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=self._stop_timeout_s)
            for task in pending:
                # Only a batch or a send stuck longer than the stop timeout gets
                # here; its claims stay and time out.
                log.error(
                    "task did not stop in time; cancelling",
                    extra={"action": "worker_stop_timeout", "task": task.get_name()},
                )
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks = []
        if self.listener is not None and self._owns_listener:
            await self.listener.close()
        log.info(
            "worker stopped", extra={"action": "worker_stopped", "processor_id": self.processor_id}
        )

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """For /readyz: the listener's state (always ready with LISTEN off)."""
        if self.listener is None:
            return True, {"enabled": False}
        ok, details = await self.listener.readiness()
        return ok, {"enabled": True, **details}
