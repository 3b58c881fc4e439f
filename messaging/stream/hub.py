"""The stream's hub: one reader of the log per process, fanned out to every
consumer connected to this process.

The hub reads the log (store/stream_events.py) after its position when woken:
by the log's NOTIFY (the listener), by a fallback timer (the sweep's interval,
for a notification lost with the LISTEN connection), and soon again when a
read found committed events held back behind a transaction still in flight
(which may notify nothing when it ends). Each event is rendered once into its
SSE frame and offered to every live consumer, which keeps at most
`buffer_events` frames: one that falls that far behind is dropped (its stream
ends, with a log line and a metric), so a slow consumer costs bounded memory.

The hub keeps the last `ring_events` frames. A consumer resuming from a
position reads the log itself (at its own pace, page by page) until the ring
covers its position, then joins live: the ring's frames after its position
are queued and it is subscribed in one step of the event loop, between two of
the hub's reads, so it misses nothing and repeats nothing (every frame after
its cursor, none before). With no consumer the hub reads nothing; the first
one to arrive starts it again from the log's head.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable

import asyncpg

from messaging.errors import StreamGone, TooManyStreams
from messaging.metrics import Metrics
from messaging.models import StreamPosition as Position
from messaging.store import stream_events
from messaging.store.stream_events import LoggedEvent

log = logging.getLogger(__name__)

# Rows one read of the log takes at most (the hub's, and a resuming consumer's page).
READ_LIMIT = 1000
# A read that found events held back reads again after this, doubling to the cap.
HELD_BACK_FIRST_S = 0.001
HELD_BACK_CAP_S = 0.05
# A read that failed (the database away) is tried again after this.
READ_RETRY_S = 1.0

Render = Callable[[LoggedEvent], bytes]


class Frame:
    """One event, rendered once for every consumer."""

    __slots__ = ("conversation_id", "data", "position")

    def __init__(self, position: Position, conversation_id: int, data: bytes) -> None:
        self.position = position
        self.conversation_id = conversation_id
        self.data = data


class Consumer:
    """One connected stream: its cursor (every event up to it has been queued
    for it, or was not its conversation's), the frames waiting for its socket,
    and why it ended, once it has."""

    def __init__(
        self, hub: StreamHub, conversation_id: int | None, cursor: Position, buffer_events: int
    ) -> None:
        self._hub = hub
        self.conversation_id = conversation_id
        self.cursor = cursor
        self._buffer_events = buffer_events
        self._frames: collections.deque[bytes] = collections.deque()
        self._ready = asyncio.Event()
        self.live = False  # offered the hub's frames; until then it reads the log itself
        self.ended: str | None = None  # 'slow', 'shutdown', 'closed', 'gone'

    def offer(self, frame: Frame) -> None:
        """The hub's (or the ring's) next frame, if this consumer wants it."""
        if frame.position <= self.cursor or self.ended is not None:
            return
        self.cursor = frame.position
        if self.conversation_id is not None and frame.conversation_id != self.conversation_id:
            return
        if len(self._frames) >= self._buffer_events:
            self._hub.drop_slow(self)
            return
        self._frames.append(frame.data)
        self._ready.set()

    def queue(self, frames: list[bytes], cursor: Position) -> None:
        """Frames this consumer read from the log itself, up to `cursor`."""
        self._frames.extend(frames)
        self.cursor = max(self.cursor, cursor)

    def end(self, reason: str) -> None:
        if self.ended is None:
            self.ended = reason
        self._ready.set()

    async def next(self, timeout_s: float) -> list[bytes]:
        """The frames due next: pages of the log while catching up, then what the
        hub offered; [] after timeout_s with nothing to send (time for a
        heartbeat) or once the stream has ended (see `ended`)."""
        while not self._frames and not self.live and self.ended is None:
            await self._hub.catch_up(self)
        if not self._frames and self.ended is None and self.live:
            self._ready.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), timeout=timeout_s)
        if self.ended is not None:
            return []
        frames = list(self._frames)
        self._frames.clear()
        return frames


class StreamHub:
    """Owns the reader task; consumers open() and close() through it."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        metrics: Metrics,
        render: Render,
        *,
        max_streams: int,
        buffer_events: int,
        fallback_interval_s: float,
        body_chars: int,
        ring_events: int = 10_000,
    ) -> None:
        self._pool = pool
        self._metrics = metrics
        self._render = render
        self._max_streams = max_streams
        self._buffer_events = buffer_events
        self._fallback_interval_s = fallback_interval_s
        self._body_chars = body_chars
        self._consumers: set[Consumer] = set()
        self._live: set[Consumer] = set()
        # The frames after ring_floor up to position, oldest first.
        self._ring: collections.deque[Frame] = collections.deque(maxlen=ring_events)
        self._ring_floor = stream_events.ORIGIN
        self.position: Position | None = None  # None: idle, nobody connected
        self._starting = asyncio.Lock()
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    @property
    def consumers(self) -> int:
        """Streams open (catching up or live)."""
        return len(self._consumers)

    def wake(self, payload: str = "") -> None:
        """The listener's subscriber: the log has new rows (or may have)."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="stream-hub")

    def shutdown(self) -> None:
        """End every stream (their handlers return, and the consumers resume
        elsewhere from their last event), and refuse new ones: the server is
        stopping."""
        self._closing = True
        for consumer in list(self._consumers):
            consumer.end("shutdown")

    async def close(self) -> None:
        self.shutdown()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def open(self, conversation_id: int | None, after: Position | None) -> Consumer:
        """A new consumer, after `after` or, with None, from now (its cursor is
        then the log's head). TooManyStreams at the limit or while shutting down;
        StreamGone when `after` is older than the log keeps."""
        if self._closing or len(self._consumers) >= self._max_streams:
            self._metrics.stream_refused("shutdown" if self._closing else "limit")
            raise TooManyStreams(
                "This process is shutting down."
                if self._closing
                else f"This process serves {self._max_streams} streams at most."
            )
        position = await self._active()
        consumer = Consumer(self, conversation_id, after or position, self._buffer_events)
        self._consumers.add(consumer)
        self._metrics.stream_opened()
        if after is not None:
            try:
                # The first page now, so that a position too old is a 410 before
                # the response has begun.
                await self.catch_up(consumer)
            except BaseException:
                self.close_consumer(consumer)
                raise
            if consumer.ended == "gone":
                self.close_consumer(consumer)
                raise StreamGone(f"The events after {after} are no longer kept.")
        return consumer

    def close_consumer(self, consumer: Consumer) -> None:
        """The consumer's stream is over (whatever ended it)."""
        if consumer in self._consumers:
            self._consumers.discard(consumer)
            self._live.discard(consumer)
            consumer.end("closed")
            self._metrics.stream_closed()
            if not self._consumers:
                # Nobody to read for: stop reading until someone connects.
                self.position = None
                self._ring.clear()

    def drop_slow(self, consumer: Consumer) -> None:
        log.warning(
            "stream consumer too slow; disconnected",
            extra={
                "action": "stream_slow_consumer",
                "buffered": self._buffer_events,
                "cursor": str(consumer.cursor),
            },
        )
        self._metrics.stream_slow_consumer()
        self._live.discard(consumer)
        consumer.end("slow")

    async def catch_up(self, consumer: Consumer) -> None:
        """A resuming consumer's next page of the log; or, once the ring covers
        its cursor, the ring's frames after it, and it goes live."""
        upto = self.position
        assert upto is not None  # it has a consumer: not idle
        if consumer.cursor >= self._ring_floor or consumer.cursor >= upto:
            # No await from here on: the hub offers nothing meanwhile.
            for frame in self._ring:
                consumer.offer(frame)
            consumer.live = True
            self._live.add(consumer)
            return
        page = await self._read(consumer.cursor, consumer.conversation_id)
        if page.gone:
            consumer.end("gone")
            return
        frames = [self._render(event) for event in page.events]
        cursor = page.events[-1].position if page.events else consumer.cursor
        if len(page.events) < READ_LIMIT:
            # The page holds every final event of this consumer after its cursor;
            # all up to `upto` were final before the read began.
            cursor = max(cursor, upto)
        consumer.queue(frames, cursor)

    async def _active(self) -> Position:
        """The hub's position, starting it from the log's head if it was idle."""
        async with self._starting:
            if self.position is None:
                head = await stream_events.head(self._pool)
                self.position = head
                self._ring.clear()
                self._ring_floor = head
                self._wake.set()
            return self.position

    async def _read(self, after: Position, conversation_id: int | None) -> stream_events.Read:
        return await stream_events.read_after(
            self._pool,
            after,
            conversation_id=conversation_id,
            limit=READ_LIMIT,
            body_chars=self._body_chars,
        )

    async def _run(self) -> None:
        held_back_s = 0.0
        while True:
            timeout = held_back_s or self._fallback_interval_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
            self._wake.clear()
            if self.position is None:
                held_back_s = 0.0
                continue
            try:
                held_back = await self._read_new()
            except Exception as exc:
                log.warning(
                    "stream read failed; trying again",
                    extra={"action": "stream_read_failed", "error": f"{type(exc).__name__}: {exc}"},
                )
                held_back_s = READ_RETRY_S
                continue
            held_back_s = (
                min(HELD_BACK_CAP_S, max(HELD_BACK_FIRST_S, held_back_s * 2)) if held_back else 0.0
            )

    async def _read_new(self) -> bool:
        """Read what is final after the hub's position, offering each frame to
        every live consumer; whether events were held back."""
        while self.position is not None:
            start = self.position
            page = await self._read(start, None)
            if self.position != start:
                return False  # went idle (and maybe active again) meanwhile
            for event in page.events:
                frame = Frame(event.position, event.message.conversation_id, self._render(event))
                if len(self._ring) == self._ring.maxlen:
                    self._ring_floor = self._ring[0].position
                self._ring.append(frame)
                for consumer in list(self._live):
                    consumer.offer(frame)
                self.position = event.position
            if len(page.events) < READ_LIMIT:
                return page.held_back
        return False
