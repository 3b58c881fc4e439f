"""The LISTEN connection, shared by every loop that waits for a notification.

One dedicated asyncpg connection, outside the pool, LISTENs on every channel
that has a subscriber. A notification only calls its subscribers, which must
return at once (they set a wake-up; the work happens in their own loop). The
payload is passed on; the inbound trigger's is empty.

When the connection is lost (terminated, server restarted, network gone) the
listener reconnects with jittered exponential backoff, and after every
(re)connection calls each subscriber once: notifications sent while nobody
listened are lost, so every loop looks for work at once instead of waiting for
its sweep. A connection can also die silently (a dropped route, a hung
server): every `check_interval_s` the listener NOTIFYs itself on a channel of
its own and expects the notification back within `check_timeout_s`, else it
drops the connection and reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg

from messaging.metrics import Metrics
from messaging.store import listen
from messaging.store.db import Conn
from messaging.worker import backoff

log = logging.getLogger(__name__)

# Called with the notification's payload ('' after a (re)connection).
Subscriber = Callable[[str], None]
# What the process's heartbeat reports (heartbeat.py): connecting is before the
# first connection, reconnecting after a lost one, off once closing.
ListenerState = Literal["listening", "connecting", "reconnecting", "off"]


class Listener:
    """Owns the LISTEN connection and the task that keeps it alive."""

    def __init__(
        self,
        database_url: str,
        metrics: Metrics,
        *,
        name: str = "messaging-listener",
        check_interval_s: float = 30.0,
        check_timeout_s: float = 5.0,
        reconnect_base_s: float = 0.1,
        reconnect_cap_s: float = 10.0,
    ) -> None:
        self._url = database_url
        self._metrics = metrics
        self._name = name
        self._check_interval_s = check_interval_s
        self._check_timeout_s = check_timeout_s
        self._reconnect_base_s = reconnect_base_s
        self._reconnect_cap_s = reconnect_cap_s
        self._subscribers: dict[str, list[Subscriber]] = {}
        # Unique per listener, so that its self-check wakes nobody else.
        self._check_channel = f"messaging_listener_check_{secrets.token_hex(8)}"
        self._pending_check: tuple[str, asyncio.Future[None]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()
        # Set when the current connection is lost, or when closing; a new one per
        # connection, so a late callback from an old connection cannot interrupt it.
        self._interrupt = asyncio.Event()
        self._conn: asyncpg.Connection | None = None
        self._connections = 0
        self._last_check_ok: float | None = None
        self._last_error: str | None = None
        # Wall-clock time of the last change of state, for the operator's view.
        self._state_since = datetime.now(UTC)
        # Down until the first connection listens: a process that never manages to
        # listen is seen down (messaging_listener_up), not absent.
        metrics.listener_state(up=False)

    def subscribe(self, channel: str, subscriber: Subscriber) -> None:
        """Call `subscriber` for every notification on `channel`, and after every
        (re)connection. Subscribe before start()."""
        if self._task is not None:
            raise RuntimeError("subscribe before the listener starts")
        self._subscribers.setdefault(channel, []).append(subscriber)

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    @property
    def state(self) -> ListenerState:
        if self._closing.is_set():
            return "off"
        if self.connected:
            return "listening"
        return "reconnecting" if self._connections else "connecting"

    @property
    def state_since(self) -> datetime:
        """When the state last changed (a closed connection not yet noticed
        still counts as listening)."""
        return self._state_since

    @property
    def application_name(self) -> str:
        """How the connection names itself in pg_stat_activity."""
        return self._name[:63]

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="listener")

    async def close(self) -> None:
        """Stop listening and close the connection."""
        self._closing.set()
        self._interrupt.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        details: dict[str, Any] = {
            "connected": self.connected,
            "channels": sorted(self._subscribers),
            "reconnects": max(0, self._connections - 1),
        }
        if self._last_check_ok is not None:
            details["last_check_s_ago"] = round(time.monotonic() - self._last_check_ok, 3)
        if self._last_error and not self.connected:
            details["error"] = self._last_error
        return self.connected, details

    async def _run(self) -> None:
        failures = 0
        while not self._closing.is_set():
            try:
                conn = await self._connect()
            except listen.ListenThroughPooler as exc:
                # A setting to fix, not an outage: said as an error, tried again
                # slowly (the sweep keeps the work moving meanwhile).
                failures += 1
                self._last_error = str(exc)
                log.error(
                    "listener cannot listen through a connection pooler",
                    extra={"action": "listener_pooled", "error": self._last_error},
                )
                await self._sleep(self._reconnect_cap_s)
                continue
            except Exception as exc:
                failures += 1
                self._last_error = f"{type(exc).__name__}: {exc}"
                pause = backoff.delay(
                    failures, base=self._reconnect_base_s, cap=self._reconnect_cap_s
                )
                log.warning(
                    "listener cannot connect; retrying",
                    extra={
                        "action": "listener_connect_failed",
                        "error": self._last_error,
                        "attempt": failures,
                        "retry_in_s": round(pause, 3),
                    },
                )
                await self._sleep(pause)
                continue
            connected_at = time.monotonic()
            try:
                await self._watch(conn)
            finally:
                self._conn = None
                self._state_since = datetime.now(UTC)
                self._metrics.listener_state(up=False)
                await self._disconnect(conn)
            # A connection that stayed up a while was a success: start the backoff
            # over. One that dropped at once keeps backing off (a flapping server).
            if time.monotonic() - connected_at > self._reconnect_cap_s:
                failures = 0
            elif not self._closing.is_set():
                failures += 1
                await self._sleep(
                    backoff.delay(failures, base=self._reconnect_base_s, cap=self._reconnect_cap_s)
                )

    async def _connect(self) -> asyncpg.Connection:
        conn = await listen.connect(
            self._url, application_name=self.application_name, timeout_s=self._check_timeout_s
        )
        interrupt = asyncio.Event()
        self._interrupt = interrupt
        if self._closing.is_set() or conn.is_closed():
            interrupt.set()
        try:
            conn.add_termination_listener(lambda _conn: interrupt.set())
            await conn.add_listener(self._check_channel, self._on_check)
            for channel in self._subscribers:
                await conn.add_listener(channel, self._on_notification)
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn
        self._connections += 1
        self._state_since = datetime.now(UTC)
        self._metrics.listener_state(up=True)
        self._last_check_ok = time.monotonic()
        if self._connections > 1:
            self._metrics.listener_reconnected()
        log.info(
            "listening" if self._connections == 1 else "listener reconnected",
            extra={
                "action": "listener_connected",
                "channels": sorted(self._subscribers),
                "reconnects": self._connections - 1,
            },
        )
        # Whatever was notified while nobody listened is lost: look for work now.
        for channel in self._subscribers:
            self._dispatch(channel, "")
        return conn

    async def _watch(self, conn: asyncpg.Connection) -> None:
        """Until the connection is lost, fails its self-check, or we close."""
        while not self._closing.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._interrupt.wait(), timeout=self._check_interval_s)
            if self._closing.is_set():
                return
            if self._interrupt.is_set() or conn.is_closed():
                self._last_error = "the connection was lost"
                log.warning("listener connection lost", extra={"action": "listener_lost"})
                return
            if not await self._self_check(conn):
                return

    async def _self_check(self, conn: asyncpg.Connection) -> bool:
        token = secrets.token_hex(8)
        echo: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending_check = (token, echo)
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._check_timeout_s):
                await listen.notify(
                    conn, self._check_channel, token, timeout_s=self._check_timeout_s
                )
                await echo
        except Exception as exc:
            self._last_error = f"self-check failed: {type(exc).__name__}: {exc}"
            log.warning(
                "listener self-check failed; reconnecting",
                extra={"action": "listener_check_failed", "error": self._last_error},
            )
            return False
        finally:
            self._pending_check = None
        self._last_check_ok = time.monotonic()
        log.debug(
            "listener self-check answered",
            extra={"action": "listener_check", "seconds": round(time.monotonic() - started, 4)},
        )
        return True

    async def _disconnect(self, conn: asyncpg.Connection) -> None:
        if conn.is_closed():
            return
        if self._closing.is_set():
            try:
                await conn.close(timeout=self._check_timeout_s)
                return
            except Exception:
                pass
        # A connection that failed its self-check may never answer a goodbye.
        conn.terminate()

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake up at once when closing."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), timeout=seconds)

    def _on_check(self, conn: Conn, pid: int, channel: str, payload: object) -> None:
        pending = self._pending_check
        if pending is not None and pending[0] == payload and not pending[1].done():
            pending[1].set_result(None)

    def _on_notification(self, conn: Conn, pid: int, channel: str, payload: object) -> None:
        self._dispatch(channel, str(payload))

    def _dispatch(self, channel: str, payload: str) -> None:
        for subscriber in self._subscribers.get(channel, []):
            try:
                subscriber(payload)
            except Exception:
                # A subscriber's bug must not take the listener down with it.
                log.exception(
                    "notification subscriber failed",
                    extra={"action": "listener_subscriber_error", "channel": channel},
                )
