"""Validation of outbound sends (POST /api/messages/sms and /email)."""

from datetime import UTC, datetime
from typing import Any

import pytest

from messaging.errors import InvalidRequest
from messaging.http.requests import (
    OutboundMessage,
    parse_email_send,
    parse_idempotency_key,
    parse_sms_send,
)
from messaging.outbox import request_hash
from tests.support.payloads import EMAIL_SEND as EMAIL
from tests.support.payloads import SMS_SEND as SMS

MMS = {**SMS, "type": "mms", "attachments": ["https://example.com/image.jpg"]}
T0 = datetime(2024, 11, 1, 14, tzinfo=UTC)


def fields(exc: pytest.ExceptionInfo[InvalidRequest]) -> set[str]:
    return {e.field for e in exc.value.errors}


def test_api_md_sms() -> None:
    assert parse_sms_send(SMS) == OutboundMessage(
        "sms", "+12016661234", "+18045551234", "Hello! This is a test SMS message.", (), T0
    )


def test_mms_is_normalised_and_may_have_no_text() -> None:
    sent = parse_sms_send({**MMS, "from": "(201) 666-1234", "body": None})
    assert (sent.message_type, sent.channel) == ("mms", "sms")
    assert sent.from_address == "+12016661234"
    assert sent.body == ""
    assert sent.attachments == ("https://example.com/image.jpg",)


def test_sms_with_empty_attachments_list() -> None:
    assert parse_sms_send({**SMS, "attachments": []}).attachments == ()


def test_api_md_email() -> None:
    sent = parse_email_send({**EMAIL, "to": "Contact@Gmail.COM"})
    assert (sent.message_type, sent.channel) == ("email", "email")
    assert sent.to_address == "contact@gmail.com"
    assert sent.body.startswith("Hello!")
    assert sent.attachments == ("https://example.com/document.pdf",)
    assert sent.sent_at == T0


def test_email_without_attachments() -> None:
    assert parse_email_send({**EMAIL, "attachments": None}).attachments == ()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"type": "fax"}, "/type"),
        ({"type": None}, "/type"),
        ({"type": "mms", "attachments": None}, "/attachments"),
        ({"type": "mms", "attachments": []}, "/attachments"),
        ({"attachments": ["https://example.com/a.jpg"]}, "/attachments"),
        ({"type": "mms", "attachments": ["javascript:alert(1)"]}, "/attachments/0"),
        ({"from": "not a number"}, "/from"),
        ({"to": 12016661234}, "/to"),
        ({"body": ""}, "/body"),
        ({"body": None}, "/body"),
        ({"timestamp": "2024-11-01 14:00"}, "/timestamp"),
        ({"timestamp": None}, "/timestamp"),
    ],
)
def test_sms_rejections(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_sms_send({**SMS, **change})
    assert field in fields(exc)
    assert exc.value.status == 400


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"body": ""}, "/body"),
        ({"body": " \n"}, "/body"),
        ({"body": None}, "/body"),
        ({"from": "+12016661234"}, "/from"),
        ({"to": "two@@example.com"}, "/to"),
        ({"attachments": {"url": "https://example.com/a.pdf"}}, "/attachments"),
        ({"timestamp": "tomorrow"}, "/timestamp"),
    ],
)
def test_email_rejections(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_email_send({**EMAIL, **change})
    assert field in fields(exc)


def test_every_bad_field_is_named_at_once() -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_sms_send({"type": "mms", "body": 5})
    assert fields(exc) == {"/from", "/to", "/body", "/attachments", "/timestamp"}


def test_idempotency_key() -> None:
    assert parse_idempotency_key([]) is None
    assert parse_idempotency_key(["order 17/a"]) == "order 17/a"
    assert parse_idempotency_key(["k" * 256]) == "k" * 256


@pytest.mark.parametrize(
    "values",
    [[""], ["k" * 257], ["caf\u00e9"], ["nul\x00"], ["tab\there"], ["a", "b"]],
    ids=["empty", "too-long", "non-ascii", "nul", "tab", "twice"],
)
def test_idempotency_key_rejections(values: list[str]) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_idempotency_key(values)
    assert fields(exc) == {"Idempotency-Key"}
    assert exc.value.status == 400


def test_the_request_hash_is_of_the_normalised_message() -> None:
    same = request_hash(parse_sms_send(SMS))
    assert request_hash(parse_sms_send({**SMS, "from": "(201) 666-1234"})) == same
    assert request_hash(parse_sms_send({**SMS, "timestamp": "2024-11-01T16:00:00+02:00"})) == same
    others = [
        parse_sms_send({**SMS, "body": "Hello!"}),
        parse_sms_send({**SMS, "type": "mms", "attachments": ["https://example.com/a.jpg"]}),
        parse_sms_send({**SMS, "from": SMS["to"], "to": SMS["from"]}),
        parse_email_send({**EMAIL, "body": SMS["body"]}),
    ]
    assert len({request_hash(m) for m in others} | {same}) == 5
