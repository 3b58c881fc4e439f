from datetime import UTC, datetime, timedelta, timezone

import pytest

from messaging.errors import InvalidRequest
from messaging.http.conversations import PREVIEW_CHARS, preview
from messaging.http.requests import MAX_PAGE_SIZE, PageRequest, parse_page
from messaging.timestamps import format_timestamp


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, PageRequest(1, 50)),
        ({"pageSize": "0"}, PageRequest(1, 50)),
        ({"pageSize": "-0"}, PageRequest(1, 50)),
        ({"pageSize": "10", "page": "3"}, PageRequest(3, 10)),
        ({"pageSize": str(MAX_PAGE_SIZE + 1)}, PageRequest(1, MAX_PAGE_SIZE)),
        ({"pageSize": "99999999999999999999"}, PageRequest(1, MAX_PAGE_SIZE)),
        ({"pageSize": "9" * 5000}, PageRequest(1, MAX_PAGE_SIZE)),
        ({"page": "0" * 30 + "2"}, PageRequest(2, 50)),
        ({"page_size": "10"}, PageRequest(1, 50)),  # not a parameter of the API
    ],
)
def test_page_parameters(query: dict[str, str], expected: PageRequest) -> None:
    assert parse_page(query) == expected


def test_offset() -> None:
    assert PageRequest(3, 20).offset == 40


@pytest.mark.parametrize(
    "query",
    [
        {"page": "0"},
        {"page": "-2"},
        {"page": " 1"},
        {"page": "1_0"},
        {"page": "٣"},
        {"pageSize": "-5"},
    ],
)
def test_bad_page_parameters(query: dict[str, str]) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_page(query)
    assert exc.value.status == 400
    assert [e.field for e in exc.value.errors] == list(query)


def test_preview_of_email_html() -> None:
    body = "<html><body><p>Hi&nbsp;there,</p>\n\n<p>See <b>this</b></p></body></html>"
    assert preview(body, "email") == "Hi there, See this"


def test_preview_keeps_angle_brackets_of_sms() -> None:
    assert preview("a <b> c", "sms") == "a <b> c"


def test_long_preview_is_cut_with_an_ellipsis() -> None:
    cut = preview("word " * 100, "sms")
    assert len(cut) <= PREVIEW_CHARS
    assert cut.endswith("…")


def test_timestamps_are_utc_with_z() -> None:
    east = timezone(timedelta(hours=2))
    assert format_timestamp(datetime(2024, 11, 1, 16, 0, tzinfo=east)) == "2024-11-01T14:00:00Z"
    assert (
        format_timestamp(datetime(2024, 11, 1, 14, 0, 0, 5000, tzinfo=UTC))
        == "2024-11-01T14:00:00.005000Z"
    )
