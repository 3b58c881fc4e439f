"""The client's typed answers, decoded from the service's JSON (msgspec, straight
into the types): what a well-formed answer gives, what a malformed one raises,
and that the types still behave as the frozen dataclasses they replaced."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest

from messaging.client import (
    Conversation,
    LastMessage,
    MalformedResponse,
    Message,
    SendAccepted,
    StreamEvent,
    models,
)

T0 = datetime(2024, 11, 1, 14, tzinfo=UTC)
# A message as the lists (and the stream's events) show it.
MESSAGE: dict[str, Any] = {
    "id": 7,
    "direction": "outbound",
    "type": "mms",
    "from": "+12016661234",
    "to": "+18045551234",
    "conversation_id": 3,
    "body": "Hi",
    "body_truncated": False,
    "attachments": ["https://example.com/a.jpg"],
    "timestamp": "2024-11-01T14:00:00Z",
    "status": "queued",
}
TYPED = Message(
    id=7,
    direction="outbound",
    type="mms",
    from_="+12016661234",
    to="+18045551234",
    conversation_id=3,
    body="Hi",
    body_truncated=False,
    attachments=("https://example.com/a.jpg",),
    timestamp=T0,
    status="queued",
)
LAST: dict[str, Any] = {
    "id": 7,
    "direction": "outbound",
    "type": "mms",
    "from": "+12016661234",
    "to": "+18045551234",
    "preview": "Hi",
    "timestamp": "2024-11-01T14:00:00Z",
}
CONVERSATION: dict[str, Any] = {
    "id": 3,
    "channel": "sms",
    "participants": ["+12016661234", "+18045551234"],
    "message_count": 1,
    "last_activity_at": "2024-11-01T14:00:00Z",
    "last_message": LAST,
}


DROP = object()


def data(**changes: Any) -> str:
    """An event's data, its message changed (a field changed to DROP left out)."""
    message = {k: v for k, v in {**MESSAGE, **changes}.items() if v is not DROP}
    body = {"type": "message.created", "conversation_id": 3, "message": message}
    return msgspec.json.encode(body).decode()


def page(items: list[Any], total: int | None = None, page_size: Any = 50) -> bytes:
    meta = {"total": len(items) if total is None else total, "page": 1, "page_size": page_size}
    return msgspec.json.encode({"items": items, "meta": meta})


def test_an_event_is_decoded_into_the_typed_models() -> None:
    event = models.stream_event("754-12", "message.created", data())
    assert event == StreamEvent("754-12", "message.created", 3, TYPED)
    assert event.message.timestamp.tzinfo is UTC
    # From bytes the same.
    assert models.stream_event("754-12", "message.created", data().encode()) == event


def test_fields_the_client_does_not_know_are_skipped() -> None:
    assert models.stream_event("1", "message.created", data(new_field=[1, {}])).message == TYPED


def test_a_time_with_another_offset_is_handed_out_in_utc() -> None:
    event = models.stream_event("1", "message.updated", data(timestamp="2024-11-01T09:00:00-05:00"))
    assert event.message.timestamp == T0
    assert event.message.timestamp.tzinfo is UTC


@pytest.mark.parametrize(
    "change",
    [
        {"id": "7"},
        {"id": True},  # a bool is an int to Python, never to the API
        {"id": DROP},
        {"from": DROP},
        {"from_": "+12016661234", "from": DROP},
        {"body_truncated": 0},
        {"attachments": None},
        {"attachments": "https://example.com/a.jpg"},
        {"attachments": [1]},
        {"timestamp": "2024-11-01T14:00:00"},  # no offset
        {"timestamp": "yesterday"},
        {"timestamp": 1730469600},
    ],
)
def test_a_message_of_another_shape_is_malformed(change: dict[str, Any]) -> None:
    with pytest.raises(MalformedResponse, match="an event's data"):
        models.stream_event("1", "message.created", data(**change))


@pytest.mark.parametrize(
    "body",
    ["", "{", "[]", "null", '{"conversation_id": 3}', '{"conversation_id": "3", "message": {}}'],
)
def test_data_that_is_not_an_events_is_malformed(body: str) -> None:
    with pytest.raises(MalformedResponse, match="an event's data"):
        models.stream_event("1", "message.created", body)


def test_a_page_of_messages() -> None:
    other = {**MESSAGE, "id": 8, "timestamp": "2024-11-01T15:00:00+01:00", "attachments": []}
    decoded = models.message_page(page([MESSAGE, other], total=9))
    assert decoded.items == [
        TYPED,
        msgspec.structs.replace(TYPED, id=8, attachments=()),
    ]
    assert decoded.items[1].timestamp.tzinfo is UTC
    assert (decoded.total, decoded.page_size) == (9, 50)


def test_a_page_of_conversations() -> None:
    without_last = {k: v for k, v in CONVERSATION.items() if k != "last_message"}
    offset = {
        **CONVERSATION,
        "id": 4,
        "last_activity_at": "2024-11-01T16:00:00+02:00",
        "last_message": {**LAST, "timestamp": "2024-11-01T16:00:00+02:00"},
    }
    decoded = models.conversation_page(
        page([CONVERSATION, {**CONVERSATION, "last_message": None}, without_last, offset])
    )
    last = LastMessage(7, "outbound", "mms", "+12016661234", "+18045551234", "Hi", T0)
    typed = Conversation(3, "sms", ("+12016661234", "+18045551234"), 1, T0, last)
    assert decoded.items == [
        typed,
        msgspec.structs.replace(typed, last_message=None),
        msgspec.structs.replace(typed, last_message=None),
        msgspec.structs.replace(typed, id=4),
    ]
    converted = decoded.items[3]
    assert converted.last_activity_at.tzinfo is UTC
    assert converted.last_message is not None and converted.last_message.timestamp.tzinfo is UTC


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"items": []}',
        b'{"meta": {"total": 0, "page_size": 50}}',
        b'{"items": {}, "meta": {"total": 0, "page_size": 50}}',
        page([], total="1"),  # type: ignore[arg-type]
        page([], page_size=0),
        page([], page_size=None),
        page([MESSAGE, {**MESSAGE, "id": "8"}]),
        page([{**MESSAGE, "timestamp": "2024-11-01 14:00"}]),
    ],
)
def test_a_page_of_another_shape_is_malformed(body: bytes) -> None:
    with pytest.raises(MalformedResponse, match="a page of messages"):
        models.message_page(body)


def test_a_conversation_page_with_a_broken_last_message_is_malformed() -> None:
    broken = {**CONVERSATION, "last_message": {**LAST, "preview": None}}
    with pytest.raises(MalformedResponse, match=r"last_message"):
        models.conversation_page(page([broken]))


def test_a_sends_answer() -> None:
    body = b'{"id": 1, "status": "queued", "conversation_id": 2, "extra": true}'
    assert models.send_accepted(body, True) == SendAccepted(1, "queued", 2, True)
    with pytest.raises(MalformedResponse, match="a send's answer"):
        models.send_accepted(b'{"id": 1, "status": "queued"}', False)
    with pytest.raises(MalformedResponse, match="is not JSON"):
        models.send_accepted(b"<html>", False)


def test_the_models_are_frozen_values() -> None:
    same = Message(7, "outbound", "mms", "+12016661234", "+18045551234", 3, "Hi", False,
                   ("https://example.com/a.jpg",), T0, "queued")  # fmt: skip
    assert same == TYPED and hash(same) == hash(TYPED)
    assert same != msgspec.structs.replace(TYPED, status="sent")
    assert repr(TYPED).startswith("Message(id=7, direction='outbound', type='mms', from_=")
    with pytest.raises(AttributeError):
        TYPED.status = "sent"  # type: ignore[misc]
    # Aware times compare by instant, whatever their offset.
    assert (
        msgspec.structs.replace(TYPED, timestamp=T0.astimezone(timezone(timedelta(hours=-5))))
        == TYPED
    )
