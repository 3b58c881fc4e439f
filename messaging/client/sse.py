"""Server-Sent Events: the WHATWG "event stream" parsing algorithm as a pure class
(bytes in, events out), so that its corners can be tested without a server.

https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
"""

from __future__ import annotations

import re
from codecs import utf_8_decode as _decode_utf8

import msgspec

# Lines end in CRLF, LF or CR alone. A CR at the very end of a chunk ends its
# line too; a LF that starts the next chunk is then the second half of a CRLF.
_LINE_END = re.compile(r"\r\n|\r|\n")
# A frame as the service writes it (`id:`, `event:`, then one `data:` line and
# the blank line) is taken in one step when the stream is between frames: this
# matches its first lines, str.find the end of its data. The regex stops short
# of the data, which is most of the frame: scanning that is memchr's job.
_FRAME_HEAD = re.compile(r"id: ([^\n\0]*)\nevent: ([^\n]*)\ndata: ")


# A Struct, not a frozen dataclass, whose __init__ cost more than parsing the
# frame; gc=False: three strings cannot form a cycle.
class ServerSentEvent(msgspec.Struct, frozen=True, gc=False):
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

    A frame in the service's own form, whole in what has arrived, is taken in
    one step (see _FRAME_HEAD); everything else (comments, `retry:`, several
    data lines, fields in another order, a frame cut by the end of a chunk)
    line by line, and text with a CR all of it. Both give the same events: the
    one step is taken only between frames, where the lines before have left
    nothing pending, and only for what the lines would read the same way.
    """

    def __init__(self, last_event_id: str = "") -> None:
        self.last_event_id = last_event_id
        self.retry_ms: int | None = None
        # UTF-8 bytes of a character cut by the end of the last chunk.
        self._undecoded = b""
        self._started = False
        self._after_cr = False
        self._pending = ""
        self._data: list[str] = []
        self._event_type = ""
        self._id_buffer = last_event_id

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """The events that the bytes received so far complete, in order."""
        if self._undecoded:
            chunk = self._undecoded + chunk
        # codecs' incremental decoder, without its Python layer on top.
        text, used = _decode_utf8(chunk, "replace", False)
        self._undecoded = chunk[used:]
        if not text:
            return []
        if not self._started:
            self._started = True
            if text.startswith("\ufeff"):
                text = text[1:]
        if self._after_cr:
            self._after_cr = False
            if text.startswith("\n"):
                text = text[1:]
        buffer = self._pending + text
        if "\r" in text:
            self._after_cr = text.endswith("\r")
            return self._by_line(buffer)
        events: list[ServerSentEvent] = []
        # Only whole lines are read; the rest waits for the next chunk.
        end = buffer.rfind("\n") + 1
        find = buffer.find
        pos = 0
        while pos < end:
            head = _FRAME_HEAD.match(buffer, pos, end)
            # Between frames only: after lines of the same frame, this one's
            # fields would add to theirs.
            if head is not None and not (self._data or self._event_type):
                data_at = head.end()
                # There is a LF after the head: the text read ends in one.
                data_end = find("\n", data_at, end)
                if buffer.startswith("\n", data_end + 1, end):
                    event_id, event_type = head.groups()
                    self._id_buffer = self.last_event_id = event_id
                    data = buffer[data_at:data_end]
                    events.append(ServerSentEvent(event_type or "message", data, event_id))
                    pos = data_end + 2
                    continue
            line_end = find("\n", pos, end)
            event = self._line(buffer[pos:line_end])
            if event is not None:
                events.append(event)
            pos = line_end + 1
        self._pending = buffer[end:]
        return events

    def _by_line(self, buffer: str) -> list[ServerSentEvent]:
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
