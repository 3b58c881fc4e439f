"""The event stream of GET /api/events as an async iterator that outlives its
connections: it reconnects by itself and resumes with Last-Event-ID, so that a
consumer sees every event once across restarts of the service, dead connections
and 503s, and learns (StreamExpired) when resuming is no longer possible."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from time import monotonic
from types import TracebackType
from typing import Self

import aiohttp

from messaging.client import models
from messaging.client.errors import (
    ConnectionFailed,
    MalformedEvent,
    MalformedResponse,
    MessagingError,
    error_from_response,
)
from messaging.client.models import StreamEvent
from messaging.client.retry import Backoff
from messaging.client.sse import ServerSentEvent, SSEParser

# Errors of the network, of a connection that died, or of one silent for too long.
CONNECTION_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError)
# Answers after which trying again later may succeed: the service (or a gateway
# in front of it) is overloaded, restarting or cut off from its database.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
EVENT_TYPES = frozenset({"message.created", "message.updated"})
_HEADERS = {
    # problem+json too: the errors (410, 503) come in it, and the service answers
    # 406 to an Accept that excludes JSON.
    "Accept": "text/event-stream, application/problem+json",
    "Cache-Control": "no-cache",
}


class EventStream:
    """Typed events of the service's stream, from `last_event_id` on (from now,
    without one), across as many connections as it takes.

    `last_event_id` is the position of the last event handed out (or of the
    stream's first frame): persist it after handling an event, and pass it to
    `MessagingClient.events()` to resume there later. Reconnections wait the
    client's backoff, never less than the server's Retry-After or `retry:`; a
    connection on which nothing arrives (not even a heartbeat) for
    `idle_timeout_s` counts as dead. An answer that retrying cannot cure is
    raised: StreamExpired (410: events were missed, re-read the lists), 400,
    401, 403, 404. Only event types this client knows are handed out; an event of
    one with data of the wrong shape raises MalformedEvent (iterating on skips it).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        headers: Mapping[str, str],
        params: Mapping[str, str],
        last_event_id: str | None,
        backoff: Backoff,
        idle_timeout_s: float,
        max_retries: int | None,
        max_retry_after_s: float,
        on_close: Callable[[EventStream], None],
    ) -> None:
        self._session = session
        self._url = url
        self._headers = {**headers, **_HEADERS}
        self._params = dict(params)
        self._last_event_id = last_event_id or None
        self._backoff = backoff
        self._idle_timeout_s = idle_timeout_s
        self._max_retries = max_retries
        self._max_retry_after_s = max_retry_after_s
        self._on_close = on_close
        self._response: aiohttp.ClientResponse | None = None
        self._parser: SSEParser | None = None
        # Idle detection: one timer per connection, not one per read (that was
        # a sixth of a slow stream's CPU). When a read began, while one waits.
        self._reading_since: float | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._silenced = False
        self._ready: deque[ServerSentEvent] = deque()
        self._closed = False
        # Consecutive connections that failed or ended, and why the last one did.
        self._failures = 0
        self._failure: MessagingError | None = None
        self._retry_after: float | None = None
        self._retry_ms: int | None = None
        # Requests that were answered (200 or a refusal).
        self.requests = 0

    @property
    def last_event_id(self) -> str | None:
        return self._last_event_id

    @property
    def connected(self) -> bool:
        """Whether a connection to the stream is open now."""
        return self._response is not None

    def __aiter__(self) -> Self:
        return self

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection; the iteration (also one waiting in another task)
        ends."""
        self._closed = True
        self._drop()
        self._on_close(self)

    async def __anext__(self) -> StreamEvent:
        ready = self._ready
        while True:
            while ready:
                sse = ready.popleft()
                # Only the event types this client knows are handed out.
                if sse.type in EVENT_TYPES:
                    try:
                        event = models.stream_event(sse.last_event_id, sse.type, sse.data)
                    except MalformedResponse as exc:
                        # The position stays before it.
                        raise _malformed(sse, exc) from exc
                    self._last_event_id = sse.last_event_id or None
                    return event
                self._last_event_id = sse.last_event_id or None
            parser = self._parser
            if parser is not None:
                # An `id:` without data after the last event moves the position too.
                self._last_event_id = parser.last_event_id or None
            if self._closed:
                raise StopAsyncIteration
            response = self._response
            if response is None or parser is None:
                await self._connect()
                continue
            # The read is inline, a coroutine less per read. Until it returns,
            # the idle timer (_check_idle) counts how long it has waited.
            self._reading_since = monotonic()
            try:
                chunk = await response.content.readany()
            except CONNECTION_ERRORS as exc:
                self._broke(exc)
                continue
            finally:
                self._reading_since = None
            if not chunk:
                self._lost(ConnectionFailed("the service ended the event stream"), None)
                continue
            self._failures = 0
            ready.extend(parser.feed(chunk))
            self._retry_ms = parser.retry_ms

    def _broke(self, exc: BaseException) -> None:
        cause = exc
        if self._silenced:
            cause = TimeoutError(f"nothing arrived for {self._idle_timeout_s} s")
        self._lost(ConnectionFailed(f"the event stream broke: {cause!r}"), cause)

    def _check_idle(self, response: aiohttp.ClientResponse) -> None:
        """The idle timer: closes a connection whose pending read has waited
        idle_timeout_s (its read then fails, and the stream reconnects), or
        sets itself again for when the read now pending, or the next, would
        have waited that long. Time spent outside reads, in the caller's code,
        does not count: the bytes may be there, unread."""
        if response is not self._response:
            return
        delay = self._idle_timeout_s
        if self._reading_since is not None:
            delay -= monotonic() - self._reading_since
            if delay <= 0:
                self._idle_timer = None
                self._silenced = True
                response.close()
                return
        self._idle_timer = asyncio.get_running_loop().call_later(delay, self._check_idle, response)

    def _lost(self, failure: MessagingError, cause: BaseException | None) -> None:
        failure.__cause__ = cause
        self._drop()
        self._fail(failure, None)

    async def _connect(self) -> None:
        """Open a connection (after the backoff, when the last one failed), or raise
        an error that retrying cannot cure, or one retried max_retries times."""
        while not self._closed:
            if self._failures:
                assert self._failure is not None
                if self._max_retries is not None and self._failures > self._max_retries:
                    raise self._failure
                if (self._retry_after or 0) > self._max_retry_after_s:
                    raise self._failure
                floor = max(self._retry_after or 0.0, (self._retry_ms or 0) / 1000)
                await asyncio.sleep(self._backoff.delay_s(self._failures, floor))
                if self._closed:
                    return
            headers = dict(self._headers)
            if self._last_event_id:
                headers["Last-Event-ID"] = self._last_event_id
            try:
                async with asyncio.timeout(self._idle_timeout_s):
                    response = await self._session.get(
                        self._url, params=self._params, headers=headers
                    )
            except CONNECTION_ERRORS as exc:
                failure = ConnectionFailed(f"the event stream could not connect: {exc!r}")
                failure.__cause__ = exc
                self._fail(failure, None)
                continue
            self.requests += 1
            if response.status == 200 and response.content_type == "text/event-stream":
                self._response = response
                self._parser = SSEParser(self._last_event_id or "")
                self._silenced = False
                self._idle_timer = asyncio.get_running_loop().call_later(
                    self._idle_timeout_s, self._check_idle, response
                )
                return
            try:
                await self._refused(response)
            finally:
                response.close()

    async def _refused(self, response: aiohttp.ClientResponse) -> None:
        if response.status == 204:
            # The server's way (WHATWG) to say: do not reconnect.
            self._closed = True
            return
        if response.status == 200:
            raise MalformedResponse(
                f"GET /api/events answered {response.content_type!r}, not an event stream"
            )
        try:
            error = await error_from_response(response)
        except CONNECTION_ERRORS as exc:
            failure = ConnectionFailed(f"the event stream's error broke off: {exc!r}")
            failure.__cause__ = exc
            self._fail(failure, None)
            return
        if response.status not in RETRYABLE_STATUSES:
            raise error
        self._fail(error, error.retry_after)

    def _fail(self, failure: MessagingError, retry_after: float | None) -> None:
        self._failures += 1
        self._failure = failure
        self._retry_after = retry_after

    def _drop(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self._response is not None:
            self._response.close()
            self._response = None
        # An event cut off by the end of its connection is never dispatched.
        self._ready.clear()


def _malformed(sse: ServerSentEvent, exc: MalformedResponse) -> MalformedEvent:
    return MalformedEvent(
        f"event {sse.last_event_id!r} ({sse.type}): {exc}",
        event_id=sse.last_event_id,
        event_type=sse.type,
        data=sse.data,
    )
