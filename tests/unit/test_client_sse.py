"""The client's Server-Sent Events parser against the WHATWG algorithm: line
endings, fields, dispatch, the last event id, and chunks cut anywhere."""

from __future__ import annotations

import random

import pytest

from messaging.client.sse import ServerSentEvent, SSEParser


def parse(stream: bytes, last_event_id: str = "") -> tuple[list[ServerSentEvent], SSEParser]:
    parser = SSEParser(last_event_id)
    return parser.feed(stream), parser


def event(data: str, type: str = "message", last_event_id: str = "") -> ServerSentEvent:
    return ServerSentEvent(type, data, last_event_id)


# The service's wire format: the first frame, an event, a heartbeat, another event.
SERVICE = (
    b"retry: 3000\nid: 754-11\n\n"
    b'id: 754-12\nevent: message.created\ndata: {"type": "message.created"}\n\n'
    b": heartbeat\n\n"
    b'id: 755-0\nevent: message.updated\ndata: {"a": 1}\n\n'
)
SERVICE_EVENTS = [
    event('{"type": "message.created"}', "message.created", "754-12"),
    event('{"a": 1}', "message.updated", "755-0"),
]


def test_the_services_frames() -> None:
    events, parser = parse(SERVICE)
    assert events == SERVICE_EVENTS
    assert parser.last_event_id == "755-0"
    assert parser.retry_ms == 3000


def test_an_id_without_data_moves_the_last_event_id_without_an_event() -> None:
    events, parser = parse(b"retry: 1000\nid: 754-12\n\n")
    assert events == []
    assert parser.last_event_id == "754-12"


def test_the_id_moves_only_when_its_frame_is_dispatched() -> None:
    parser = SSEParser("1")
    assert parser.feed(b"id: 2\ndata: x\n") == []
    assert parser.last_event_id == "1"
    assert parser.feed(b"\n") == [event("x", last_event_id="2")]
    assert parser.last_event_id == "2"


@pytest.mark.parametrize("end", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending(end: bytes) -> None:
    stream = SERVICE.replace(b"\n", end)
    assert parse(stream)[0] == SERVICE_EVENTS


def test_mixed_line_endings() -> None:
    events, _ = parse(b"data: a\r\ndata: b\rdata: c\n\r\ndata: d\r\r")
    assert events == [event("a\nb\nc"), event("d")]


@pytest.mark.parametrize("stream", [SERVICE, SERVICE.replace(b"\n", b"\r\n")])
def test_a_stream_cut_into_chunks_anywhere_parses_the_same(stream: bytes) -> None:
    for cut in range(len(stream) + 1):
        parser = SSEParser()
        events = parser.feed(stream[:cut]) + parser.feed(stream[cut:])
        assert events == SERVICE_EVENTS, cut
    parser = SSEParser()
    one_by_one = [e for i in range(len(stream)) for e in parser.feed(stream[i : i + 1])]
    assert one_by_one == SERVICE_EVENTS


def test_a_cr_ending_a_chunk_and_a_lf_starting_the_next_are_one_line_end() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    # Were the LF a second line end, the event would be dispatched here.
    assert parser.feed(b"\n") == []
    assert parser.feed(b"\r\n") == [event("a")]


def test_a_character_cut_between_chunks_is_decoded_whole() -> None:
    data = "héllo ☃ 😀".encode()
    stream = b"data: " + data + b"\n\n"
    for cut in range(len(stream) + 1):
        parser = SSEParser()
        assert parser.feed(stream[:cut]) + parser.feed(stream[cut:]) == [event("héllo ☃ 😀")]


def test_invalid_utf8_is_replaced() -> None:
    assert parse(b"data: a\xffb\n\n")[0] == [event("a\ufffdb")]


def test_one_leading_space_of_a_value_is_dropped_and_no_more() -> None:
    events, _ = parse(b"data:a\n\ndata: a\n\ndata:  a\n\ndata: a \n\n")
    assert [e.data for e in events] == ["a", "a", " a", "a "]


def test_data_lines_are_joined_with_lf() -> None:
    events, _ = parse(b"data: first\ndata\ndata:\ndata: last\n\n")
    # `data` alone is a field with an empty value: an empty line of data.
    assert events == [event("first\n\n\nlast")]


def test_an_empty_data_line_is_still_an_event() -> None:
    assert parse(b"data\n\n")[0] == [event("")]
    assert parse(b"data:\n\n")[0] == [event("")]


def test_comments_and_unknown_fields_are_ignored() -> None:
    stream = b": heartbeat\n:\nfoo: bar\nData: no\nid : no\ndata: yes\n: mid\n\n"
    events, parser = parse(stream)
    assert events == [event("yes")]
    assert parser.last_event_id == ""


def test_a_heartbeat_alone_dispatches_nothing() -> None:
    events, parser = parse(b": heartbeat\n\n" * 3, "9-9")
    assert events == []
    assert parser.last_event_id == "9-9"


def test_the_event_type_is_reset_after_each_event_and_defaults_to_message() -> None:
    events, _ = parse(b"event: a\ndata: 1\n\ndata: 2\n\nevent: b\n\ndata: 3\n\n")
    # An event type without data is dropped with its frame.
    assert [(e.type, e.data) for e in events] == [("a", "1"), ("message", "2"), ("message", "3")]


def test_the_id_persists_until_another_one_and_an_empty_id_resets_it() -> None:
    events, parser = parse(b"id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\nid: 8\n\n")
    assert [e.last_event_id for e in events] == ["7", "7", ""]
    assert parser.last_event_id == "8"


def test_an_id_with_a_nul_is_ignored() -> None:
    events, parser = parse(b"id: 1\n\nid: 2\x003\ndata: a\n\n")
    assert events == [event("a", last_event_id="1")]
    assert parser.last_event_id == "1"


def test_ids_are_opaque() -> None:
    events, parser = parse(b"id:  spaced: and colons \ndata: a\n\n")
    assert events[0].last_event_id == " spaced: and colons "
    assert parser.last_event_id == " spaced: and colons "


def test_retry_takes_digits_only() -> None:
    parser = SSEParser()
    for line, expected in [
        (b"retry: 1500\n", 1500),
        (b"retry: 15x\n", 1500),
        (b"retry: -1\n", 1500),
        (b"retry:\n", 1500),
        (b"retry: \xd9\xa3\n", 1500),  # an Arabic-Indic digit is no ASCII digit
        (b"retry:0\n", 0),
    ]:
        parser.feed(line)
        assert parser.retry_ms == expected, line


def test_an_event_cut_off_by_the_end_of_the_stream_is_not_dispatched() -> None:
    events, parser = parse(b"id: 5\ndata: complete\n\nid: 6\ndata: cut off\n")
    assert events == [event("complete", last_event_id="5")]
    assert parser.last_event_id == "5"


def test_one_leading_bom_is_dropped() -> None:
    assert parse(b"\xef\xbb\xbfdata: a\n\n")[0] == [event("a")]
    # Cut inside the BOM, too; a second BOM is the start of a field name.
    parser = SSEParser()
    assert parser.feed(b"\xef\xbb") == []
    assert parser.feed(b"\xbf\xef\xbb\xbfdata: a\n\ndata: b\n\n") == [event("b")]


def test_the_last_event_id_of_the_connection_before_carries_on() -> None:
    events, parser = parse(b"data: no id on this one\n\n", last_event_id="754-12")
    assert events == [event("no id on this one", last_event_id="754-12")]
    assert parser.last_event_id == "754-12"


# A frame in the service's form (`id:`, `event:`, one `data:` line, the blank
# line) is taken in one step; everything else line by line, and text with a CR
# all of it. So the same stream with its LFs made CRLFs is the line-by-line
# reading, and the two must agree, whatever the frames and wherever the cuts.

FAST_PATH_CASES = [
    SERVICE,
    # Non-ASCII, and bytes that are not UTF-8.
    'id: 1\nevent: message.created\ndata: {"body": "héllo ☃ 😀"}\n\n'.encode(),
    b"id: 2\nevent: e\ndata: a\xffb\n\n",
    # The service's form after lines of the same frame: its fields add to theirs.
    b"data: before\nid: 3\nevent: e\ndata: after\n\n",
    b"event: first\nid: 4\nevent: e\ndata: d\n\n",
    # The form's start, then more than it.
    b"id: 5\nevent: e\ndata: d\ndata: more\n\n",
    b"id: 6\nevent: e\ndata: d\n: a comment\nretry: 7\n\n",
    b"id: 7\nevent: e\ndata: d\nid: 8\n\n",
    # Values the one step must read as the lines would.
    b"id: 9\nevent: \ndata: d\n\n",
    b"id: 10\x0011\nevent: e\ndata: d\n\n",
    b"id:  12 \nevent:  e \ndata:  d \n\n",
    b"id: \nevent: e\ndata: \n\n",
    b"id:13\nevent:e\ndata:d\n\n",
    # Blank lines beyond the one that ends a frame.
    b"\n\nid: 14\nevent: e\ndata: d\n\n\n\nid: 15\nevent: e\ndata: d2\n\n\n",
]


def crlf(stream: bytes) -> bytes:
    return stream.replace(b"\n", b"\r\n")


def parse_all(chunks: list[bytes]) -> tuple[list[ServerSentEvent], str, int | None]:
    parser = SSEParser("0")
    events = [e for chunk in chunks for e in parser.feed(chunk)]
    return events, parser.last_event_id, parser.retry_ms


@pytest.mark.parametrize("stream", FAST_PATH_CASES)
def test_the_one_step_reads_frames_as_the_lines_do(stream: bytes) -> None:
    expected = parse_all([crlf(stream)])
    assert expected[0], "every case dispatches an event"
    assert parse_all([stream]) == expected
    for cut in range(len(stream) + 1):
        assert parse_all([stream[:cut], stream[cut:]]) == expected, cut
    assert parse_all([stream[i : i + 1] for i in range(len(stream))]) == expected


def test_what_the_one_step_reads() -> None:
    events, parser = parse(b"".join(FAST_PATH_CASES[3:]))
    assert events == [
        event("before\nafter", "e", "3"),
        event("d", "e", "4"),
        event("d\nmore", "e", "5"),
        event("d", "e", "6"),
        event("d", "e", "8"),  # an id after the data is still this event's
        event("d", "message", "9"),
        event("d", "e", "9"),  # an id with a NUL is ignored
        event(" d ", " e ", " 12 "),
        event("", "e", ""),
        event("d", "e", "13"),
        event("d", "e", "14"),
        event("d2", "e", "15"),
    ]
    assert parser.retry_ms == 7


def test_a_stream_that_turns_to_crlf_midway_reads_the_same() -> None:
    stream = b"".join(FAST_PATH_CASES)
    half = len(stream) // 2
    mixed = stream[:half] + crlf(stream[half:])
    expected = parse_all([crlf(stream)])
    for cut in range(0, len(mixed) + 1, 7):
        assert parse_all([mixed[:cut], mixed[cut:]]) == expected, cut


LINES = [
    b"id: 1-1",
    b"id: 2-2",
    b"id: x\x00y",
    b"id",
    b"event: message.created",
    b"event: other",
    b"event:",
    b'data: {"a": 1}',
    "data: é☃".encode(),
    b"data:",
    b"data: \xff",
    b": heartbeat",
    b"retry: 10",
    b"retry: x",
    b"field: value",
    b"",
    b"",
    b"",
]
FRAME = b'id: 3-3\nevent: message.updated\ndata: {"b": 2}\n\n'


def test_random_streams_read_the_same_by_either_path() -> None:
    rng = random.Random(1203)
    for _ in range(300):
        parts = [FRAME if rng.random() < 0.3 else rng.choice(LINES) + b"\n" for _ in range(20)]
        stream = b"".join(parts)
        expected = parse_all([crlf(stream)])
        assert parse_all([stream]) == expected, stream
        cuts = sorted(rng.sample(range(len(stream) + 1), 4))
        chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
        assert parse_all(chunks) == expected, (stream, cuts)
