"""GET /api/events: the event stream (Server-Sent Events).

Each change of a message, pushed once it is final in the stream's log
(store/stream_events.py): `message.created` when an inbound message is stored
by the worker or a send is queued, `message.updated` when a send changes
status. An event is

    id: <position>
    event: message.created
    data: {"type": ..., "conversation_id": ..., "message": {<as the lists show it>}}

The first frame names where the stream starts (`id:` with no data: it sets the
consumer's last event id without being an event), so that a consumer that
reconnects before its first event still resumes from there. `Last-Event-ID`
resumes after a position (410 once the log no longer keeps it);
`?conversation_id=N` narrows the stream to one conversation (404 if none).
A comment line every MESSAGING_STREAM_HEARTBEAT_SECS keeps idle connections
open through proxies and lets both ends notice a dead one. The fan-out,
catching up and slow consumers are stream/hub.py's.
"""

from __future__ import annotations

import asyncio
import logging

import msgspec
from aiohttp import web

from messaging.errors import NotFound
from messaging.http.conversations import LIST_BODY_CHARS, message_json
from messaging.http.keys import METRICS, POOL, SETTINGS, STREAM_HUB
from messaging.http.middleware import REQUEST_ID_HEADER
from messaging.http.problems import REQUEST_ID
from messaging.http.requests import parse_stream_request
from messaging.store import conversations
from messaging.store.stream_events import LoggedEvent

log = logging.getLogger("messaging.http")

# How long an EventSource waits before it reconnects (the SSE retry field).
RECONNECT_MS = 1000
BODY_CHARS = LIST_BODY_CHARS
_HEARTBEAT = b": heartbeat\n\n"
# How often an idle stream checks that its consumer is still connected, so
# that one that left frees its place (MESSAGING_MAX_STREAMS) within a second.
GONE_CHECK_S = 1.0
_encode = msgspec.json.encode


def render(event: LoggedEvent) -> bytes:
    """An event's SSE frame (rendered once, for every consumer). JSON has no raw
    line breaks, so the data is one line."""
    m = event.message
    data = _encode(
        {"type": event.type, "conversation_id": m.conversation_id, "message": message_json(m)}
    )
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (
        str(event.position).encode(),
        event.type.encode(),
        data,
    )


async def events(request: web.Request) -> web.StreamResponse:
    wanted = parse_stream_request(request.query, request.headers.get("Last-Event-ID"))
    app = request.app
    if wanted.conversation_id is not None and not await conversations.exists(
        app[POOL], wanted.conversation_id
    ):
        raise NotFound(f"There is no conversation {wanted.conversation_id}.")
    hub = app[STREAM_HUB]
    consumer = await hub.open(wanted.conversation_id, wanted.after, lambda: _hang_up(request))
    start = wanted.after or consumer.cursor
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            # Tells nginx not to buffer the stream.
            "X-Accel-Buffering": "no",
            REQUEST_ID_HEADER: request[REQUEST_ID],
        }
    )
    heartbeat_s = app[SETTINGS].stream_heartbeat_secs
    metrics = app[METRICS]
    loop = asyncio.get_running_loop()
    try:
        await response.prepare(request)
        await response.write(b"retry: %d\nid: %s\n\n" % (RECONNECT_MS, str(start).encode()))
        written_at = loop.time()
        while True:
            frames = await consumer.next(min(heartbeat_s, GONE_CHECK_S))
            if consumer.ended is not None or _gone(request):
                break
            if frames:
                await response.write(b"".join(frames))
                metrics.stream_events_sent(len(frames))
                written_at = loop.time()
            elif loop.time() - written_at >= heartbeat_s:
                await response.write(_HEARTBEAT)
                written_at = loop.time()
    except ConnectionResetError:
        pass  # the consumer left
    except Exception as exc:
        # The response has begun: no problem+json now. The consumer reconnects
        # and resumes from its last event.
        log.warning(
            "stream ended by an error",
            extra={
                "action": "stream_failed",
                "error": f"{type(exc).__name__}: {exc}",
                "request_id": request[REQUEST_ID],
            },
        )
    finally:
        hub.close_consumer(consumer)
    return response


def _hang_up(request: web.Request) -> None:
    """Cut a slow consumer's connection: what is queued for its socket is
    dropped with it, and a write waiting for the socket to drain fails."""
    if request.transport is not None:
        request.transport.abort()


def _gone(request: web.Request) -> bool:
    """Whether the consumer has hung up (aiohttp tells a handler only when it
    next writes, so an idle stream looks every GONE_CHECK_S)."""
    return request.transport is None or request.transport.is_closing()


def routes() -> list[web.RouteDef]:
    return [web.get("/api/events", events)]
