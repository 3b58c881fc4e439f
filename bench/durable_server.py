"""Issue 10's baseline (b), the cheapest durable ingest the stack allows: aiohttp
on uvloop, the webhook decoded by a compiled msgspec decoder (typed fields, no
further rules), and the group-committed multi-row INSERT into inbound_events
(with its NOTIFY trigger) before the 202. No logging, no metrics, no middleware,
no address normalisation and no problem+json: a body msgspec refuses is a
bare 400.

    python -m bench.durable_server PORT DATABASE_URL

Two writer tasks each take whatever has queued while the previous commit ran,
as the service's group commit does (same defaults: 2 writers, pool of 10).
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque

import asyncpg
import msgspec
from aiohttp import web

from bench.baseline_server import serve_app
from bench.queries import query

WRITERS = 2
POOL_SIZE = 10
MAX_BATCH = 1000
_INSERT = query("durable_server.sql", "insert_events")


class SmsWebhook(msgspec.Struct, forbid_unknown_fields=False):
    type: str
    messaging_provider_id: str
    body: str
    timestamp: str
    attachments: list[str] | None = None
    from_: str = msgspec.field(name="from", default="")
    to: str = ""


_decode = msgspec.json.Decoder(SmsWebhook).decode
_encode = msgspec.json.encode
Pending = tuple[SmsWebhook, str, "asyncio.Future[int]"]


class GroupCommit:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._queue: deque[Pending] = deque()
        self._ready = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._tasks = [asyncio.create_task(self._run()) for _ in range(WRITERS)]

    async def store(self, event: SmsWebhook, text: str) -> int:
        future: asyncio.Future[int] = self._loop.create_future()
        self._queue.append((event, text, future))
        self._ready.set()
        return await future

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await self._ready.wait()
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), MAX_BATCH))]
            if not self._queue:
                self._ready.clear()
            if batch:
                await self._commit(batch)

    async def _commit(self, batch: list[Pending]) -> None:
        try:
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(
                    _INSERT,
                    [e.messaging_provider_id for e, _, _ in batch],
                    [e.type for e, _, _ in batch],
                    [e.from_ for e, _, _ in batch],
                    [e.to for e, _, _ in batch],
                    [text for _, text, _ in batch],
                )
        except Exception as exc:
            for _, _, future in batch:
                future.set_exception(exc)
            return
        ids = [row[0] for row in rows] + [0] * (len(batch) - len(rows))  # 0: a retry
        for (_, _, future), event_id in zip(batch, ids, strict=True):
            future.set_result(event_id)


async def sms_webhook(request: web.Request) -> web.Response:
    text = await request.text()
    try:
        event = _decode(text)
    except msgspec.ValidationError:
        return web.Response(status=400)
    event_id = await request.app[WRITER].store(event, text)
    body = {"id": event_id, "status": "accepted", "channel": "sms"}
    return web.Response(body=_encode(body), status=202, content_type="application/json")


WRITER = web.AppKey("writer", GroupCommit)


def app(database_url: str) -> web.Application:
    application = web.Application()

    async def lifecycle(application: web.Application):  # type: ignore[no-untyped-def]
        pool = await asyncpg.create_pool(database_url, min_size=POOL_SIZE, max_size=POOL_SIZE)
        application[WRITER] = GroupCommit(pool)
        yield
        await application[WRITER].close()
        await pool.close()

    application.cleanup_ctx.append(lifecycle)
    return application


if __name__ == "__main__":
    serve_app(app(sys.argv[2]), sms_webhook, int(sys.argv[1]))
