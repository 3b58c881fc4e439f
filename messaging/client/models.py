"""What the API answers, as typed values: built from the JSON once, checked as
they are built, so that a caller's `message.timestamp` is a datetime and a
changed or broken answer fails here (MalformedResponse) rather than deep inside
the caller's code. The fields are the JSON's, `from` spelled `from_`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from messaging.client.errors import MalformedResponse

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SendAccepted:
    """A send's 202: the message is stored, queued for its provider. `replayed`:
    the Idempotency-Key named an earlier send, and this is that send's answer."""

    id: int
    status: str
    conversation_id: int
    replayed: bool


@dataclass(frozen=True, slots=True)
class Message:
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
    timestamp: datetime
    status: str


@dataclass(frozen=True, slots=True)
class LastMessage:
    """The newest message of a conversation, with a one-line plain-text preview."""

    id: int
    direction: str
    type: str
    from_: str
    to: str
    preview: str
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class Conversation:
    id: int
    channel: str
    participants: tuple[str, ...]
    message_count: int
    last_activity_at: datetime
    last_message: LastMessage | None


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """An event of GET /api/events: `id` is its position in the stream (opaque),
    `type` "message.created" or "message.updated"."""

    id: str
    type: str
    conversation_id: int
    message: Message


def send_accepted(body: Any, replayed: bool) -> SendAccepted:
    o = _object(body, "a send's answer")
    return SendAccepted(
        id=_get(o, "id", int),
        status=_get(o, "status", str),
        conversation_id=_get(o, "conversation_id", int),
        replayed=replayed,
    )


def message(body: Any) -> Message:
    o = _object(body, "a message")
    attachments = _get(o, "attachments", list)
    if not all(isinstance(a, str) for a in attachments):
        raise MalformedResponse(f"a message's attachments are not all strings: {attachments!r}")
    return Message(
        id=_get(o, "id", int),
        direction=_get(o, "direction", str),
        type=_get(o, "type", str),
        from_=_get(o, "from", str),
        to=_get(o, "to", str),
        conversation_id=_get(o, "conversation_id", int),
        body=_get(o, "body", str),
        body_truncated=_get(o, "body_truncated", bool),
        attachments=tuple(attachments),
        timestamp=_time(o, "timestamp"),
        status=_get(o, "status", str),
    )


def conversation(body: Any) -> Conversation:
    o = _object(body, "a conversation")
    participants = _get(o, "participants", list)
    if not all(isinstance(p, str) for p in participants):
        raise MalformedResponse(f"a conversation's participants: {participants!r}")
    last = o.get("last_message")
    return Conversation(
        id=_get(o, "id", int),
        channel=_get(o, "channel", str),
        participants=tuple(participants),
        message_count=_get(o, "message_count", int),
        last_activity_at=_time(o, "last_activity_at"),
        last_message=None if last is None else last_message(last),
    )


def last_message(body: Any) -> LastMessage:
    o = _object(body, "a conversation's last message")
    return LastMessage(
        id=_get(o, "id", int),
        direction=_get(o, "direction", str),
        type=_get(o, "type", str),
        from_=_get(o, "from", str),
        to=_get(o, "to", str),
        preview=_get(o, "preview", str),
        timestamp=_time(o, "timestamp"),
    )


def stream_event(event_id: str, event_type: str, body: Any) -> StreamEvent:
    o = _object(body, "an event's data")
    return StreamEvent(
        id=event_id,
        type=event_type,
        conversation_id=_get(o, "conversation_id", int),
        message=message(o.get("message")),
    )


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedResponse(f"{what} is not a JSON object: {str(value)[:200]}")
    return value


def _get(o: dict[str, Any], name: str, kind: type[T]) -> T:
    value = o.get(name)
    # bool is an int to Python, never to the API.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise MalformedResponse(f"{name!r} is not a {kind.__name__}: {str(value)[:200]}")
    return value


def _time(o: dict[str, Any], name: str) -> datetime:
    raw = _get(o, name, str)
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise MalformedResponse(f"{name!r} is not an RFC 3339 time: {raw[:60]!r}") from None
    if value.tzinfo is None:
        raise MalformedResponse(f"{name!r} has no offset: {raw[:60]!r}")
    return value.astimezone(UTC)
