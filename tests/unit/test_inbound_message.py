"""An inbound event's stored payload -> the message it becomes (pure)."""

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from messaging.store.inbound_events import ClaimedEvent
from messaging.worker.inbound import InvalidEvent, to_message


def event(payload: dict[str, Any] | str, **fields: Any) -> ClaimedEvent:
    values: dict[str, Any] = {
        "id": 7,
        "channel": "sms",
        "provider_message_id": "message-1",
        "message_type": "sms",
        "from_address": "+18045551234",
        "to_address": "+12016661234",
        "payload": payload if isinstance(payload, str) else json.dumps(payload),
        "attempt_count": 1,
        "received_at": datetime(2024, 11, 1, tzinfo=UTC),
    }
    return ClaimedEvent(**{**values, **fields})


SMS = {"body": "Hello", "attachments": None, "timestamp": "2024-11-01T14:00:00Z"}


def test_sms_becomes_a_message_in_the_ordered_pair() -> None:
    m = to_message(event(SMS))
    assert (m.kind, m.participant_a, m.participant_b) == ("sms", "+12016661234", "+18045551234")
    assert (m.from_address, m.to_address) == ("+18045551234", "+12016661234")
    assert (m.body, json.loads(m.attachments)) == ("Hello", [])
    assert m.sent_at == datetime(2024, 11, 1, 14, tzinfo=UTC)
    assert (m.event_id, m.provider_message_id, m.message_type) == (7, "message-1", "sms")


def test_mms_shares_the_sms_kind_and_keeps_attachments() -> None:
    payload = {
        "attachments": ["https://example.com/a.jpg"],
        "timestamp": "2024-11-01T14:00:00+02:00",
    }
    m = to_message(event(payload, message_type="mms"))
    assert m.kind == "sms"
    assert m.body == ""  # an MMS may have no body
    assert json.loads(m.attachments) == ["https://example.com/a.jpg"]
    assert m.sent_at == datetime(2024, 11, 1, 12, tzinfo=UTC)


def test_email_has_its_own_kind() -> None:
    m = to_message(
        event(
            {**SMS, "body": "<b>hi</b>"},
            channel="email",
            message_type="email",
            from_address="contact@gmail.com",
            to_address="user@usehatchapp.com",
        )
    )
    assert (m.kind, m.participant_a, m.participant_b) == (
        "email",
        "contact@gmail.com",
        "user@usehatchapp.com",
    )


@pytest.mark.parametrize(
    "payload",
    [
        "not json",
        "[1, 2]",
        {**SMS, "timestamp": "yesterday"},
        {**SMS, "timestamp": None},
        {**SMS, "body": 5},
        {**SMS, "attachments": "https://example.com/a.jpg"},
    ],
)
def test_a_payload_that_cannot_become_a_message_is_refused(payload: dict[str, Any] | str) -> None:
    with pytest.raises(InvalidEvent):
        to_message(event(payload))


@pytest.mark.parametrize(
    "timestamp",
    ["0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "9999-12-31T23:59:59.999999Z"],
)
def test_an_event_stored_with_a_timestamp_out_of_range_is_invalid(timestamp: str) -> None:
    # Stored before the webhook checked the range: the worker applies the same rule.
    with pytest.raises(InvalidEvent, match="1970-01-01"):
        to_message(event({**SMS, "timestamp": timestamp}))
