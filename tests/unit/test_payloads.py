import json
from datetime import UTC, datetime
from typing import Any

import pytest

from messaging.errors import InvalidRequest
from messaging.http.requests import parse_email_webhook, parse_sms_webhook
from messaging.jsontext import MAX_LIST_ITEMS, parse_json
from messaging.timestamps import format_timestamp, parse_timestamp
from tests.support.payloads import EMAIL_WEBHOOK as EMAIL
from tests.support.payloads import SMS_WEBHOOK

SMS = {**SMS_WEBHOOK, "body": "text message"}


def fields(exc: pytest.ExceptionInfo[InvalidRequest]) -> set[str]:
    return {e.field for e in exc.value.errors}


def test_sms_is_normalised() -> None:
    event = parse_sms_webhook({**SMS, "from": "(804) 555-1234"})
    assert (event.channel, event.message_type) == ("sms", "sms")
    assert event.from_address == "+18045551234"
    assert json.loads(event.payload)["from"] == "(804) 555-1234"


def test_email_is_case_folded() -> None:
    event = parse_email_webhook({**EMAIL, "from": "Contact@Gmail.com"})
    assert event.from_address == "contact@gmail.com"
    assert event.provider_message_id == "message-3"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"type": "fax"}, "/type"),
        ({"type": "mms", "attachments": None}, "/attachments"),
        ({"type": "mms", "attachments": []}, "/attachments"),
        ({"attachments": ["https://example.com/a.jpg"]}, "/attachments"),
        ({"type": "mms", "attachments": ["ftp://example.com/a.jpg"]}, "/attachments/0"),
        ({"from": "12345"}, "/from"),
        ({"to": None}, "/to"),
        ({"messaging_provider_id": ""}, "/messaging_provider_id"),
        ({"timestamp": "yesterday"}, "/timestamp"),
        ({"timestamp": "2024-11-01"}, "/timestamp"),
        ({"body": 42}, "/body"),
        ({"body": "x" * 100_001}, "/body"),
    ],
)
def test_sms_rejections_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_sms_webhook({**SMS, **change})
    assert field in fields(exc)
    assert exc.value.status == 400


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"body": ""}, "/body"),
        ({"body": "   "}, "/body"),
        ({"from": "not-an-email"}, "/from"),
        ({"xillio_id": None}, "/xillio_id"),
        ({"attachments": "https://example.com/a.pdf"}, "/attachments"),
        ({"attachments": ["https://example.com/a.pdf"] * 11}, "/attachments"),
    ],
)
def test_email_rejections_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_email_webhook({**EMAIL, **change})
    assert field in fields(exc)


def test_all_problems_are_reported_together() -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_sms_webhook({"type": "sms"})
    assert {"/from", "/to", "/messaging_provider_id", "/body", "/timestamp"} <= fields(exc)


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"[1, 2]",
        b'"a string"',
        b"\xff\xfe",
        b'{"a": NaN}',
        b'{"a": Infinity}',
        b"[" * 5000 + b"]" * 5000,
        b'{"a": ' + b"9" * 5000 + b"}",
        b'{"a": 1e999}',
        b'{"a": "\\u0000"}',
        b'{"a": "\\ud800"}',
        b'{"a\\u0000": 1}',
        b'{"a": ' + b'{"b": ' * 40 + b"1" + b"}" * 40 + b"}",
    ],
)
def test_hostile_json_is_a_400(raw: bytes) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_json(raw)
    assert exc.value.status == 400


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-11-01T14:00:00Z", datetime(2024, 11, 1, 14, tzinfo=UTC)),
        ("2024-11-01T16:00:00+02:00", datetime(2024, 11, 1, 14, tzinfo=UTC)),
        ("2024-11-01t14:00:00.123z", datetime(2024, 11, 1, 14, 0, 0, 123000, tzinfo=UTC)),
        ("2024-11-01T14:00:00", None),
        ("2024-13-01T14:00:00Z", None),
        ("1730469600", None),
        # Shifted to UTC, these fall outside the calendar Python can represent.
        ("0001-01-01T00:00:00+01:00", None),
        ("9999-12-31T23:59:59-01:00", None),
    ],
)
def test_timestamps_are_rfc3339(raw: str, expected: datetime | None) -> None:
    assert parse_timestamp(raw) == expected


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime.min, "0001-01-01T00:00:00Z"),  # asyncpg's -infinity: naive
        (datetime.max, "9999-12-31T23:59:59.999999Z"),  # asyncpg's infinity
        (datetime.min.replace(tzinfo=UTC), "0001-01-01T00:00:00Z"),
        (datetime(2024, 11, 1, 14, tzinfo=UTC), "2024-11-01T14:00:00Z"),
    ],
)
def test_any_stored_timestamp_formats(value: datetime, text: str) -> None:
    assert format_timestamp(value) == text


@pytest.mark.parametrize("items", [MAX_LIST_ITEMS + 1, 5000])
def test_lists_and_objects_are_bounded_by_the_route_limit(items: int) -> None:
    raw = json.dumps({"script": ["ok"] * items, "m": {str(i): 1 for i in range(items)}})
    with pytest.raises(InvalidRequest):
        parse_json(raw.encode())
    assert len(parse_json(raw.encode(), max_items=items)["script"]) == items
