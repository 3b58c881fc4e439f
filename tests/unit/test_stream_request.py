"""GET /api/events' parameters: the conversation and the position to resume after."""

from __future__ import annotations

import pytest

from messaging.errors import InvalidRequest
from messaging.http.requests import parse_stream_request
from messaging.models import StreamPosition


def test_nothing_asked_is_every_conversation_from_now() -> None:
    wanted = parse_stream_request({}, None)
    assert (wanted.conversation_id, wanted.after) == (None, None)
    # An EventSource that has seen no id sends an empty Last-Event-ID.
    assert parse_stream_request({}, "").after is None


def test_a_position_and_a_conversation() -> None:
    wanted = parse_stream_request({"conversation_id": "7"}, "761-12")
    assert wanted.conversation_id == 7
    assert wanted.after == StreamPosition(761, 12)
    assert str(wanted.after) == "761-12"
    assert StreamPosition(761, 12) < StreamPosition(761, 13) < StreamPosition(762, 1)


@pytest.mark.parametrize(
    "raw", ["17", "-1-2", "1-", "a-1", "1-2-3", "9" * 20 + "-1", "9223372036854775808-1", "1 - 2"]
)
def test_a_malformed_last_event_id_is_a_400_naming_it(raw: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_stream_request({}, raw)
    assert [e.field for e in caught.value.errors] == ["Last-Event-ID"]


@pytest.mark.parametrize("raw", ["0", "-3", "x", "1.5", "9" * 40])
def test_a_conversation_id_that_names_none_is_a_400(raw: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_stream_request({"conversation_id": raw}, None)
    assert [e.field for e in caught.value.errors] == ["conversation_id"]
