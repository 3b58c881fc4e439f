"""Helpers shared by the worker tests: arranging events in SQL, waiting for a
condition, spawning real `messaging worker` processes, and a TCP proxy that can
make a connection die silently."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from messaging.store.queries import query
from tests.pg import ROOT

# Valid SMS events, as the webhook would have stored them: provider ids
# prefix-<i>, senders spread over `pairs` phone numbers (so that events share
# conversations), one second apart.
INSERT_SMS = """
INSERT INTO inbound_events (channel, provider_message_id, message_type, from_address, to_address, payload)
SELECT 'sms', $1 || i, 'sms', sender, '+12016661234',
       jsonb_build_object(
           'from', sender, 'to', '+12016661234', 'type', 'sms',
           'messaging_provider_id', $1 || i, 'body', $4 || i, 'attachments', null,
           'timestamp', to_char(timestamp '2024-11-01 14:00:00' + i * interval '1 second',
                                'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
FROM generate_series(1, $2) AS i,
     LATERAL (SELECT '+1804555' || lpad((i % $3)::text, 4, '0') AS sender) AS s
RETURNING id
"""


async def insert_sms(
    db: asyncpg.Connection, count: int, *, prefix: str = "m-", pairs: int = 10, body: str = "hello "
) -> list[int]:
    """Insert `count` SMS events in one statement (one NOTIFY); their ids."""
    rows = await db.fetch(INSERT_SMS, prefix, count, pairs, body)
    return sorted(r["id"] for r in rows)


async def insert_sends(db: asyncpg.Connection, count: int) -> list[int]:
    """Queue `count` SMS sends from +12016661234 to +18045551234 with the send
    route's own queries (conversation first, then each message); their ids."""
    a, b, t0 = "+12016661234", "+18045551234", datetime(2024, 11, 1, 14, tzinfo=UTC)
    await db.execute(
        query("conversations.sql", "insert_missing_conversations"), ["sms"], [a], [b], [t0]
    )
    insert = query("messages.sql", "insert_outbound_message")
    return [
        await db.fetchval(insert, "sms", a, b, "sms", a, b, f"hello {i}", "[]", t0)
        for i in range(count)
    ]


async def status_counts(db: asyncpg.Connection) -> dict[str, int]:
    rows = await db.fetch("SELECT status, count(*) AS n FROM inbound_events GROUP BY status")
    return {r["status"]: r["n"] for r in rows}


async def wait_until(
    condition: Callable[[], Awaitable[Any]], *, within: float, interval: float = 0.02
) -> Any:
    """Poll condition() until it returns something truthy (that value), for at
    most `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(interval)


async def assert_consistent(db: asyncpg.Connection) -> None:
    """Messages and conversations agree with the events: one message per
    processed event, none for others, and every conversation's count and last
    activity are those of its messages."""
    assert (
        await db.fetchval(
            """SELECT count(*) FROM inbound_events e
           WHERE (e.status = 'processed') <> EXISTS (SELECT 1 FROM messages m WHERE m.inbound_event_id = e.id)"""
        )
        == 0
    )
    assert (
        await db.fetchval("SELECT count(*) - count(DISTINCT inbound_event_id) FROM messages") == 0
    )
    wrong = await db.fetch(
        """SELECT c.id FROM conversations c
           LEFT JOIN (SELECT conversation_id, count(*) AS n, max(sent_at) AS last
                      FROM messages GROUP BY conversation_id) m ON m.conversation_id = c.id
           WHERE c.message_count <> coalesce(m.n, 0) OR c.last_activity_at <> m.last"""
    )
    assert wrong == []


class WorkerProcess:
    """A real `messaging worker` process on the test's database."""

    def __init__(self, database_url: str, log_dir: Path, name: str, **env: str) -> None:
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("ab")
        environment = {
            **os.environ,
            "DATABASE_URL": database_url,
            "LOG_FORMAT": "text",
            "LOG_LEVEL": "INFO",
            **env,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "messaging", "worker"],
            cwd=ROOT,
            env=environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self._log.close()

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, wait for the exit; the exit code."""
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self._log.close()
        return code

    def stop_quietly(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        if not self._log.closed:
            self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


async def listener_backends(db: asyncpg.Connection, pid: int | None = None) -> list[int]:
    """Backend pids of LISTEN connections on this database (of one worker
    process, given its OS pid)."""
    pattern = "messaging-listener %" if pid is None else f"messaging-listener %:{pid}:%"
    rows = await db.fetch(
        """SELECT pid FROM pg_stat_activity
           WHERE datname = current_database() AND application_name LIKE $1""",
        pattern,
    )
    return [r["pid"] for r in rows]


class FreezableProxy:
    """A TCP proxy to the PostgreSQL server. freeze() stops forwarding on the
    connections open so far without closing them: to both ends they look alive
    but nothing arrives any more, as when a route silently drops packets."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._frozen: list[asyncio.Event] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.connections = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    def freeze(self) -> None:
        for frozen in self._frozen:
            frozen.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host, port = self._target
        if host.startswith("/"):
            return await asyncio.open_unix_connection(f"{host}/.s.PGSQL.{port}")
        return await asyncio.open_connection(host, port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        frozen = asyncio.Event()
        self._frozen.append(frozen)
        up_reader, up_writer = await self._open_upstream()
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, frozen), self._pump(up_reader, writer, frozen)
            )
        except (asyncio.CancelledError, ConnectionError):
            pass
        finally:
            for w in (writer, up_writer):
                w.close()
            self._tasks.discard(task)

    @staticmethod
    async def _pump(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, frozen: asyncio.Event
    ) -> None:
        while not frozen.is_set():
            data = await reader.read(65536)
            if not data or frozen.is_set():
                break
            writer.write(data)
            await writer.drain()
        if frozen.is_set():
            # Hold the connection open, silent, until the test ends.
            await asyncio.Event().wait()


def terminate_quietly(processes: list[WorkerProcess]) -> None:
    for p in processes:
        with contextlib.suppress(Exception):
            p.stop_quietly()
