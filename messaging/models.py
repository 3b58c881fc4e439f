"""The domain: what a message, an inbound event and a send are, and the rules of
their content. No I/O, and nothing of HTTP or SQL: the HTTP edge (http/requests.py)
turns requests into these types, the store keeps them, the worker and the
providers' clients use them.

- One channel mapping: SMS and MMS travel through the SMS provider and share a
  conversation kind; email has its own (channel_of).
- The statuses of events and messages, as Literal types.
- The content rules (body, attachments, sent_at) are checked once, by the
  functions here, whether a request is validated or the worker builds a message
  from the webhook it stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple, get_args

from messaging import timestamps

Channel = Literal["sms", "email"]
MessageType = Literal["sms", "mms", "email"]
Direction = Literal["inbound", "outbound"]
# inbound_events.status
EventStatus = Literal["received", "processing", "processed", "error", "dead_letter"]
# messages.status: an inbound message is received; a send goes
# queued -> sending -> sent | failed.
MessageStatus = Literal["received", "queued", "sending", "sent", "failed"]
EVENT_STATUSES: tuple[EventStatus, ...] = get_args(EventStatus)

MAX_BODY_CHARS = 100_000
MAX_ATTACHMENTS = 10
MAX_URL_CHARS = 2048
_URL = re.compile(r"https?://[^\s\x00-\x1f\x7f]+", re.IGNORECASE)


def channel_of(message_type: str) -> Channel:
    """The provider that carries a message type, and its conversation kind."""
    return "email" if message_type == "email" else "sms"


def conversation_key(channel: Channel, a: str, b: str) -> tuple[Channel, str, str]:
    """(channel, lower participant, higher participant) of two normalised
    addresses: the unique key of a conversation, the same in both directions."""
    return (channel, a, b) if a <= b else (channel, b, a)


class ContentError(ValueError):
    """A field of a message's content breaks its rule; the text says how, and
    items names the entries of a list that break it (none: the field itself)."""

    def __init__(self, message: str, items: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.items = items


def check_body(value: Any, message_type: str) -> str:
    """The body of a message: a string, not blank (but for an MMS, which may carry
    only attachments and whose missing body is ''), at most MAX_BODY_CHARS."""
    if value is None and message_type == "mms":
        return ""
    if value is None:
        raise ContentError("is required")
    if not isinstance(value, str):
        raise ContentError("must be a string")
    if message_type != "mms" and not value.strip():
        raise ContentError("must not be empty")
    if len(value) > MAX_BODY_CHARS:
        raise ContentError(f"must be at most {MAX_BODY_CHARS} characters")
    return value


def check_attachments(value: Any, message_type: str) -> tuple[str, ...]:
    """The attachment URLs: none for an SMS, at least one for an MMS, any number
    up to MAX_ATTACHMENTS for an email; null and [] mean none. Bad URLs raise
    ContentError naming each one's index."""
    if value is None or value == []:
        if message_type == "mms":
            raise ContentError("must list at least one attachment URL")
        return ()
    if not isinstance(value, list):
        raise ContentError("must be a list of URLs or null")
    if message_type == "sms":
        raise ContentError("an SMS carries no attachments (send type mms)")
    if len(value) > MAX_ATTACHMENTS:
        raise ContentError(f"must list at most {MAX_ATTACHMENTS} URLs")
    bad = tuple(
        i
        for i, url in enumerate(value)
        if not isinstance(url, str) or len(url) > MAX_URL_CHARS or not _URL.fullmatch(url)
    )
    if bad:
        raise ContentError("must be an http(s) URL", bad)
    return tuple(value)


def check_sent_at(value: Any) -> datetime:
    """The time of a message: an RFC 3339 string in the accepted range."""
    if value is None:
        raise ContentError("is required")
    if not isinstance(value, str):
        raise ContentError("must be a string")
    parsed = timestamps.parse_timestamp(value)
    if parsed is None:
        raise ContentError("must be an RFC 3339 date-time, e.g. 2024-11-01T14:00:00Z")
    if not timestamps.in_range(parsed):
        raise ContentError(timestamps.RANGE_MESSAGE)
    return parsed


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """A validated provider webhook, ready to be stored. The payload is the body
    as received (re-serialised JSON text); the fields beside it are what
    validation established."""

    channel: Channel
    provider_message_id: str
    message_type: MessageType
    from_address: str  # normalised
    to_address: str  # normalised
    body: str
    attachments: tuple[str, ...]
    sent_at: datetime  # aware, UTC
    payload: str


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A validated send (POST /api/messages/sms or /email), ready to be stored."""

    message_type: MessageType
    from_address: str  # normalised
    to_address: str  # normalised
    body: str  # '' for an MMS sent without text
    attachments: tuple[str, ...]
    sent_at: datetime  # aware, UTC

    @property
    def channel(self) -> Channel:
        return channel_of(self.message_type)


class StreamPosition(NamedTuple):
    """A place in the event stream: the writing transaction's id, then the log
    row's id (store/stream_events.sql says why both). Tuples compare in stream
    order; the SSE id is "xid-id"."""

    xid: int
    id: int

    def __str__(self) -> str:
        return f"{self.xid}-{self.id}"
