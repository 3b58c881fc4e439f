"""The stream's hub: one reader of the log per process, shared by every
consumer connected to this process.

The hub reads the log (store/stream_events.py) after its position when woken:
by the log's NOTIFY (the listener), by a fallback timer (the sweep's interval,
for a notification lost with the LISTEN connection), and soon again when a
read found committed events held back behind a transaction still in flight
(which may notify nothing when it ends). Each event is rendered once into its
SSE frame and appended to the hub's window of recent frames; every live
consumer keeps only its place in that window, and takes what lies past it
when it is woken (one wake-up per read, for all of them). The work per event
is the same with one consumer or a thousand; each consumer costs a slice and a
write per read.

A consumer that falls `buffer_events` frames behind the window's end is
dropped: its connection is cut at once (its stream ends, with a log line and
a metric), so a consumer that stopped reading holds neither a place in the
window nor buffers in the server. It may resume.

The window holds at least the last `window_events` frames. A consumer resuming
from a position reads the log itself (at its own pace, page by page) until the
window covers its position, then joins live at the first frame after it, in
one step of the event loop, between two of the hub's reads: it misses nothing
and repeats nothing. With no consumer the hub reads nothing; the first one to
arrive starts it again from the log's head.
"""

from __future__ import annotations

import asyncio
import bisect
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
# The window is cut back to window_events once it has grown this much past it.
TRIM_EVENTS = 1000

Render = Callable[[LoggedEvent], bytes]
HangUp = Callable[[], None]


class Frame:
    """One event, rendered once for every consumer."""

    __slots__ = ("conversation_id", "data", "position")

    def __init__(self, position: Position, conversation_id: int, data: bytes) -> None:
        self.position = position
        self.conversation_id = conversation_id
        self.data = data


class Consumer:
    """One connected stream: its cursor (every event up to it has been handed to
    it, or was not its conversation's), its place in the hub's window once
    live, and why it ended, once it has."""

    def __init__(
        self, hub: StreamHub, conversation_id: int | None, cursor: Position, hang_up: HangUp
    ) -> None:
        self._hub = hub
        self.conversation_id = conversation_id
        self.cursor = cursor
        self.hang_up = hang_up
        self.seq = -1  # the window's sequence number of its next frame, once live
        self.live = False
        self._pending: list[bytes] = []  # read from the log while catching up
        self.ended: str | None = None  # 'slow', 'shutdown', 'closed', 'gone'

    def end(self, reason: str) -> None:
        if self.ended is None:
            self.ended = reason

    def queue(self, frames: list[bytes], cursor: Position) -> None:
        """Frames this consumer read from the log itself, up to `cursor`."""
        self._pending.extend(frames)
        self.cursor = max(self.cursor, cursor)

    async def next(self, timeout_s: float) -> list[bytes]:
        """The frames due next: pages of the log while catching up, then the
        hub's frames past its place; [] after timeout_s with nothing to send
        (time for a heartbeat) or once the stream has ended (see `ended`)."""
        while not self._pending and not self.live and self.ended is None:
            await self._hub.catch_up(self)
        if self._pending:
            frames, self._pending = self._pending, []
            return frames
        if self.ended is None and not self._hub.has_frames_for(self):
            # Not wait_for: a timeout must not cancel the future all share.
            await asyncio.wait((self._hub.arrival,), timeout=timeout_s)
        if self.ended is not None:
            return []
        return self._hub.take(self)


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
        window_events: int = 10_000,
    ) -> None:
        self._pool = pool
        self._metrics = metrics
        self._render = render
        self._max_streams = max_streams
        self._buffer_events = buffer_events
        self._fallback_interval_s = fallback_interval_s
        self._body_chars = body_chars
        # A consumer is dropped before it falls out of the window.
        self._window_events = max(window_events, buffer_events)
        self._consumers: set[Consumer] = set()
        self._live: set[Consumer] = set()
        # The window: frames in position order, _window[i] numbered _base + i;
        # every final event after _floor up to position is in it.
        self._window: list[Frame] = []
        self._base = 0
        self._floor = stream_events.ORIGIN
        self.position: Position | None = None  # None: idle, nobody connected
        # Resolved (and replaced) when frames arrive: every live consumer waits on it.
        self.arrival: asyncio.Future[None] = asyncio.get_running_loop().create_future()
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
        self._arrived()

    async def close(self) -> None:
        self.shutdown()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def open(
        self, conversation_id: int | None, after: Position | None, hang_up: HangUp
    ) -> Consumer:
        """A new consumer, after `after` or, with None, from now (its cursor is
        then the log's head); hang_up cuts its connection (a slow consumer's).
        TooManyStreams at the limit or while shutting down; StreamGone when
        `after` is older than the log keeps."""
        if self._closing or len(self._consumers) >= self._max_streams:
            self._metrics.stream_refused("shutdown" if self._closing else "limit")
            raise TooManyStreams(
                "This process is shutting down."
                if self._closing
                else f"This process serves {self._max_streams} streams at most."
            )
        position = await self._active()
        consumer = Consumer(self, conversation_id, after or position, hang_up)
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
                self._window.clear()

    async def catch_up(self, consumer: Consumer) -> None:
        """A resuming consumer's next page of the log; or, once the window covers
        its cursor, its place in the window: it goes live."""
        upto = self.position
        assert upto is not None  # it has a consumer: not idle
        if consumer.cursor >= self._floor or consumer.cursor >= upto:
            # No await from here on: the hub appends nothing meanwhile.
            index = bisect.bisect_right(self._window, consumer.cursor, key=_position)
            consumer.seq = self._base + index
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

    def has_frames_for(self, consumer: Consumer) -> bool:
        return consumer.seq < self._base + len(self._window)

    def take(self, consumer: Consumer) -> list[bytes]:
        """A live consumer's frames past its place (of its conversation, if it
        names one), and its place moved to the window's end."""
        # Past its cursor too: a consumer that caught up from the log may have
        # read further than the hub had when it went live.
        start = bisect.bisect_right(
            self._window, consumer.cursor, lo=consumer.seq - self._base, key=_position
        )
        frames = self._window[start:]
        consumer.seq = self._base + len(self._window)
        if not frames:
            return []
        consumer.cursor = frames[-1].position
        if consumer.conversation_id is None:
            return [f.data for f in frames]
        return [f.data for f in frames if f.conversation_id == consumer.conversation_id]

    async def _active(self) -> Position:
        """The hub's position, starting it from the log's head if it was idle."""
        async with self._starting:
            if self.position is None:
                head = await stream_events.head(self._pool)
                self.position = head
                self._window.clear()
                self._floor = head
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
        """Read what is final after the hub's position into the window and wake
        the live consumers; whether events were held back."""
        while self.position is not None:
            start = self.position
            page = await self._read(start, None)
            if self.position != start:
                return False  # went idle (and maybe active again) meanwhile
            if page.events:
                self._append(page.events)
            if len(page.events) < READ_LIMIT:
                return page.held_back
        return False

    def _append(self, events: list[LoggedEvent]) -> None:
        self._window.extend(
            Frame(e.position, e.message.conversation_id, self._render(e)) for e in events
        )
        self.position = self._window[-1].position
        end = self._base + len(self._window)
        for consumer in list(self._live):
            if end - consumer.seq > self._buffer_events:
                self._drop_slow(consumer)
        if len(self._window) >= self._window_events + TRIM_EVENTS:
            # Keep the newest window_events; every live consumer is within them.
            cut = len(self._window) - self._window_events
            self._floor = self._window[cut - 1].position
            del self._window[:cut]
            self._base += cut
        self._arrived()

    def _arrived(self) -> None:
        """Wake every live consumer (a new future for the next wait)."""
        arrival, self.arrival = self.arrival, asyncio.get_running_loop().create_future()
        arrival.set_result(None)

    def _drop_slow(self, consumer: Consumer) -> None:
        log.warning(
            "stream consumer too slow; disconnected",
            extra={
                "action": "stream_slow_consumer",
                "behind": self._base + len(self._window) - consumer.seq,
                "cursor": str(consumer.cursor),
            },
        )
        self._metrics.stream_slow_consumer()
        self._live.discard(consumer)
        consumer.end("slow")
        # Cut at once: its handler may be waiting for the socket to drain.
        consumer.hang_up()


def _position(frame: Frame) -> Position:
    return frame.position
