"""What the API answers, as typed values: decoded from the JSON straight into
these types (msgspec, in C), checked as they are built, so that a caller's
`message.timestamp` is a datetime and a changed or broken answer fails here
(MalformedResponse) rather than deep inside the caller's code. The fields are
the JSON's, `from` spelled `from_`; fields the client does not know are
skipped, and times are handed out in UTC.

The types are frozen msgspec Structs rather than dataclasses: the decoder
builds them without running Python code per field, which was a third of a
stream consumer's CPU per event. They compare, hash and print as the
dataclasses did; `msgspec.structs.replace` copies one with changes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Generic, TypeVar

import msgspec
from msgspec.structs import replace

from messaging.client.errors import MalformedResponse

# An RFC 3339 time with its offset; one without is refused as it is decoded.
Time = Annotated[datetime, msgspec.Meta(tz=True)]
T = TypeVar("T")


# gc=False on every type here: their fields are strings, numbers, times and
# each other, which cannot form a reference cycle, so the garbage collector
# need neither track nor scan the thousands a busy stream hands out.
class SendAccepted(msgspec.Struct, frozen=True, gc=False):
    """A send's 202: the message is stored, queued for its provider. `replayed`:
    the Idempotency-Key named an earlier send, and this is that send's answer."""

    id: int
    status: str
    conversation_id: int
    replayed: bool


class Message(msgspec.Struct, frozen=True, gc=False, rename={"from_": "from"}):
    """A message as a conversation's list shows it; in a list, `body` is cut to
    the service's bound and `body_truncated` says so."""

    id: int
    direction: str
    type: str
    from_: str
    to: str
    conversation_id: int
    body: str
    body_truncated: bool
    attachments: tuple[str, ...]
    timestamp: Time
    status: str


class LastMessage(msgspec.Struct, frozen=True, gc=False, rename={"from_": "from"}):
    """The newest message of a conversation, with a one-line plain-text preview."""

    id: int
    direction: str
    type: str
    from_: str
    to: str
    preview: str
    timestamp: Time


class Conversation(msgspec.Struct, frozen=True, gc=False):
    id: int
    channel: str
    participants: tuple[str, ...]
    message_count: int
    last_activity_at: Time
    last_message: LastMessage | None = None


class StreamEvent(msgspec.Struct, frozen=True, gc=False):
    """An event of GET /api/events: `id` is its position in the stream (opaque),
    `type` "message.created" or "message.updated"."""

    id: str
    type: str
    conversation_id: int
    message: Message


# The shapes of whole answers, decoded in one pass.


class _Accepted(msgspec.Struct, frozen=True, gc=False):
    id: int
    status: str
    conversation_id: int


class _EventData(msgspec.Struct, frozen=True, gc=False):
    # The data's own "type" is the SSE event's type again: skipped.
    conversation_id: int
    message: Message


class _PageMeta(msgspec.Struct, frozen=True, gc=False):
    total: int
    page_size: Annotated[int, msgspec.Meta(ge=1)]


class Page(msgspec.Struct, Generic[T], frozen=True):
    """A page of a list: its items, the list's total, and the page size the
    service used (it cuts a larger one to its bound)."""

    items: list[T]
    meta: _PageMeta

    @property
    def total(self) -> int:
        return self.meta.total

    @property
    def page_size(self) -> int:
        return self.meta.page_size


_accepted = msgspec.json.Decoder(_Accepted)
_event_data = msgspec.json.Decoder(_EventData)
_message_page = msgspec.json.Decoder(Page[Message])
_conversation_page = msgspec.json.Decoder(Page[Conversation])


def send_accepted(body: bytes, replayed: bool) -> SendAccepted:
    a = _decoded(_accepted, body, "a send's answer")
    return SendAccepted(a.id, a.status, a.conversation_id, replayed)


def message_page(body: bytes) -> Page[Message]:
    page = _decoded(_message_page, body, "a page of messages")
    for i, m in enumerate(page.items):
        if m.timestamp.tzinfo is not UTC:
            page.items[i] = replace(m, timestamp=_utc(m.timestamp))
    return page


def conversation_page(body: bytes) -> Page[Conversation]:
    page = _decoded(_conversation_page, body, "a page of conversations")
    for i, c in enumerate(page.items):
        last = c.last_message
        if last is not None and last.timestamp.tzinfo is not UTC:
            last = replace(last, timestamp=_utc(last.timestamp))
        if last is not c.last_message or c.last_activity_at.tzinfo is not UTC:
            page.items[i] = replace(c, last_activity_at=_utc(c.last_activity_at), last_message=last)
    return page


def stream_event(event_id: str, event_type: str, data: str | bytes) -> StreamEvent:
    """An event of the stream from its SSE id, type and data (the JSON)."""
    # As _decoded, one call less: this runs for every event.
    try:
        d = _event_data.decode(data)
    except msgspec.DecodeError as exc:
        raise _malformed(exc, data, "an event's data") from exc
    m = d.message
    # The service writes UTC (Z); anything else is turned to it, as the lists are.
    if m.timestamp.tzinfo is not UTC:
        m = replace(m, timestamp=_utc(m.timestamp))
    return StreamEvent(event_id, event_type, d.conversation_id, m)


def _decoded(decoder: msgspec.json.Decoder[T], body: str | bytes, what: str) -> T:
    try:
        return decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise _malformed(exc, body, what) from exc


def _malformed(exc: msgspec.DecodeError, body: str | bytes, what: str) -> MalformedResponse:
    if isinstance(exc, msgspec.ValidationError):
        # Its message names the field: "Expected `int`, got `str` - at `$.id`".
        return MalformedResponse(f"{what}: {exc}")
    return MalformedResponse(f"{what} is not JSON ({exc}): {body[:200]!r}")


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is UTC else value.astimezone(UTC)
