"""Server-Sent Events: the WHATWG "event stream" parsing algorithm as a pure class
(bytes in, events out), so that its corners can be tested without a server.

https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

# Lines end in CRLF, LF or CR alone. A CR at the very end of a chunk ends its
# line too; a LF that starts the next chunk is then the second half of a CRLF.
_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """A dispatched event: its type ("message" when the stream named none), its
    data lines joined with LF, and the last event id as of this event."""

    type: str
    data: str
    last_event_id: str


class SSEParser:
    """Turns the bytes of one connection's event stream into events.

    `last_event_id` is the stream's position: it moves when a blank line dispatches
    what came before it, also when no data came (an `id:` alone moves it without
    being an event). `retry_ms` is the last reconnection time the server sent.
    Comments (`:` lines) and unknown fields are dropped; an event cut off by the
    end of the stream is never dispatched.

    One parser serves one connection; the next one starts with the last event id
    of the one before. (The spec starts every stream's id buffer empty, which would
    forget the position if a server sent an event without an `id:` after a
    reconnection.)
    """

    def __init__(self, last_event_id: str = "") -> None:
        self.last_event_id = last_event_id
        self.retry_ms: int | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._started = False
        self._after_cr = False
        self._pending = ""
        self._data: list[str] = []
        self._event_type = ""
        self._id_buffer = last_event_id

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """The events that the bytes received so far complete, in order."""
        text = self._decoder.decode(chunk)
        if not text:
            return []
        if not self._started:
            self._started = True
            if text.startswith("\ufeff"):
                text = text[1:]
        if self._after_cr and text.startswith("\n"):
            text = text[1:]
        self._after_cr = text.endswith("\r")
        buffer = self._pending + text
        events: list[ServerSentEvent] = []
        start = 0
        for end in _LINE_END.finditer(buffer):
            event = self._line(buffer[start : end.start()])
            if event is not None:
                events.append(event)
            start = end.end()
        self._pending = buffer[start:]
        return events

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event_type = value
        elif name == "id":
            if "\x00" not in value:
                self._id_buffer = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        self.last_event_id = self._id_buffer
        if not self._data:
            self._event_type = ""
            return None
        event = ServerSentEvent(
            self._event_type or "message", "\n".join(self._data), self.last_event_id
        )
        self._data = []
        self._event_type = ""
        return event
