"""Requests -> the domain's types: request bodies, query strings and headers
parsed and validated (pure functions, no I/O).

Every problem found is reported with the JSON pointer of its field, and all
problems of a body are reported together. Hostile input (deep nesting, NUL
characters, lone surrogates, non-finite or enormous numbers, huge strings or
lists) is rejected by jsontext.parse_json, so nothing downstream ever sees it. The rules of a
message's content are models.py's; the addresses' are normalize.py's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

from messaging.errors import FieldError, InvalidRequest, NotFound
from messaging.models import (
    ContentError,
    InboundEvent,
    MessageType,
    OutboundMessage,
    StreamPosition,
    check_attachments,
    check_body,
    check_sent_at,
)
from messaging.normalize import normalize_email, normalize_phone

T = TypeVar("T")

MAX_ID_CHARS = 256
# Lists: pageSize missing or 0 means the default; a larger one is cut to the bound.
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
# Idempotency-Key: visible ASCII and spaces (a structured-field string), bounded.
MAX_IDEMPOTENCY_KEY_CHARS = 256
_IDEMPOTENCY_KEY = re.compile(rf"[\x20-\x7e]{{1,{MAX_IDEMPOTENCY_KEY_CHARS}}}")
# Far past the end of any list, yet small enough that (page - 1) * MAX_PAGE_SIZE
# stays a bigint.
MAX_PAGE = 1_000_000_000

# ASCII digits only: int() would also take "1_000", " 7" and non-ASCII digits.
_INTEGER = re.compile(r"-?[0-9]+")
# More digits than this are past every bound anyway: read as _HUGE, which spares
# int() a string of thousands of digits.
_MAX_DIGITS = 19
_HUGE: int = 10**_MAX_DIGITS


@dataclass(frozen=True, slots=True)
class PageRequest:
    """Which page of a list to answer (1-based) and how many items a page holds."""

    page: int
    page_size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


def parse_page(query: Mapping[str, str]) -> PageRequest:
    """The `page` and `pageSize` query parameters of a list request, or InvalidRequest
    (400) naming each bad one. Missing page: 1. Missing or 0 pageSize: the default;
    above the bound: the bound."""
    errors: list[FieldError] = []
    page = _query_integer(query, "page", errors)
    page_size = _query_integer(query, "pageSize", errors)
    if page is not None and not 1 <= page <= MAX_PAGE:
        errors.append(FieldError("page", f"must be an integer from 1 to {MAX_PAGE}"))
    if page_size is not None and page_size < 0:
        errors.append(FieldError("pageSize", f"must be an integer from 0 to {MAX_PAGE_SIZE}"))
    if errors:
        raise InvalidRequest("The page parameters are not valid.", errors)
    return PageRequest(
        page=page or 1,
        page_size=min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE),
    )


def _query_integer(query: Mapping[str, str], name: str, errors: list[FieldError]) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    if not _INTEGER.fullmatch(raw):
        errors.append(FieldError(name, "must be an integer"))
        return None
    digits = raw.lstrip("-").lstrip("0")
    if len(digits) > _MAX_DIGITS:
        return -_HUGE if raw.startswith("-") else _HUGE
    return int(raw)


_POSITION = re.compile(r"([0-9]{1,19})-([0-9]{1,19})")
_BIGINT_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class StreamRequest:
    """What GET /api/events asks for: one conversation or all, and the position
    to resume after (None: from now)."""

    conversation_id: int | None
    after: StreamPosition | None


def parse_stream_request(query: Mapping[str, str], last_event_id: str | None) -> StreamRequest:
    """The `conversation_id` query parameter and the Last-Event-ID header of a
    stream, or InvalidRequest (400) naming each bad one. An empty Last-Event-ID
    is none (an EventSource that has seen no id sends none)."""
    errors: list[FieldError] = []
    conversation_id = _query_integer(query, "conversation_id", errors)
    if conversation_id is not None and not 1 <= conversation_id <= _BIGINT_MAX:
        errors.append(FieldError("conversation_id", "must be a conversation's id"))
    after = None
    if last_event_id:
        match = _POSITION.fullmatch(last_event_id.strip())
        if match is None or max(int(match[1]), int(match[2])) > _BIGINT_MAX:
            errors.append(FieldError("Last-Event-ID", "must be the id of an event of this stream"))
        else:
            after = StreamPosition(int(match[1]), int(match[2]))
    if errors:
        raise InvalidRequest("The stream's parameters are not valid.", errors)
    return StreamRequest(conversation_id, after)


def parse_idempotency_key(values: list[str]) -> str | None:
    """The Idempotency-Key of a send (the header's values), None without one, or
    InvalidRequest (400) for an empty, overlong, non-ASCII or repeated key."""
    if not values:
        return None
    if len(values) > 1 or not _IDEMPOTENCY_KEY.fullmatch(values[0]):
        raise InvalidRequest(
            "The Idempotency-Key header is not valid.",
            [
                FieldError(
                    "Idempotency-Key",
                    f"must be given once, 1 to {MAX_IDEMPOTENCY_KEY_CHARS} printable ASCII"
                    " characters",
                )
            ],
        )
    return values[0]


def parse_sms_webhook(body: dict[str, Any], text: str | None = None) -> InboundEvent:
    """Validate an inbound SMS/MMS from the SMS provider; text is the body as
    received (stored as it came), or None to serialise `body`."""
    v = _Validator(body)
    message_type = cast(MessageType, v.choice("type", ("sms", "mms")))
    provider_id = v.identifier("messaging_provider_id")
    sender = v.address("from", normalize_phone, _PHONE)
    recipient = v.address("to", normalize_phone, _PHONE)
    content, urls, sent_at = v.content(message_type)
    v.raise_if_invalid("The SMS webhook is not valid.")
    assert sent_at is not None
    return InboundEvent(
        "sms",
        provider_id,
        message_type,
        sender,
        recipient,
        content,
        urls,
        sent_at,
        _payload(body, text),
    )


def parse_email_webhook(body: dict[str, Any], text: str | None = None) -> InboundEvent:
    """Validate an inbound email from the email provider (text as for SMS)."""
    v = _Validator(body)
    provider_id = v.identifier("xillio_id")
    sender = v.address("from", normalize_email, _EMAIL)
    recipient = v.address("to", normalize_email, _EMAIL)
    content, urls, sent_at = v.content("email")
    v.raise_if_invalid("The email webhook is not valid.")
    assert sent_at is not None
    return InboundEvent(
        "email",
        provider_id,
        "email",
        sender,
        recipient,
        content,
        urls,
        sent_at,
        _payload(body, text),
    )


def parse_sms_send(body: dict[str, Any]) -> OutboundMessage:
    """Validate an outbound SMS/MMS: the webhook's rules, without a provider id."""
    v = _Validator(body)
    message_type = cast(MessageType, v.choice("type", ("sms", "mms")))
    sender = v.address("from", normalize_phone, _PHONE)
    recipient = v.address("to", normalize_phone, _PHONE)
    text, urls, sent_at = v.content(message_type)
    v.raise_if_invalid("The SMS/MMS message is not valid.")
    assert sent_at is not None
    return OutboundMessage(message_type, sender, recipient, text, urls, sent_at)


def parse_email_send(body: dict[str, Any]) -> OutboundMessage:
    """Validate an outbound email: the webhook's rules, without a provider id."""
    v = _Validator(body)
    sender = v.address("from", normalize_email, _EMAIL)
    recipient = v.address("to", normalize_email, _EMAIL)
    text, urls, sent_at = v.content("email")
    v.raise_if_invalid("The email message is not valid.")
    assert sent_at is not None
    return OutboundMessage("email", sender, recipient, text, urls, sent_at)


_PHONE = "a phone number (E.164, e.g. +12016661234)"
_EMAIL = "an email address"


def _payload(body: dict[str, Any], text: str | None) -> str:
    if text is not None:
        return text
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


class _Validator:
    """Collects field errors for one JSON object instead of stopping at the first."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.errors: list[FieldError] = []

    def fail(self, name: str, message: str) -> None:
        self.errors.append(FieldError(f"/{name}", message))

    def raise_if_invalid(self, detail: str) -> None:
        if self.errors:
            raise InvalidRequest(detail, self.errors)

    def string(self, name: str) -> str | None:
        value = self.body.get(name)
        if value is None:
            self.fail(name, "is required")
            return None
        if not isinstance(value, str):
            self.fail(name, "must be a string")
            return None
        return value

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        value = self.string(name)
        if value is not None and value not in choices:
            self.fail(name, f"must be one of: {', '.join(choices)}")
        return value or choices[0]

    def identifier(self, name: str) -> str:
        value = self.string(name)
        if value is not None and not 1 <= len(value.strip()) <= MAX_ID_CHARS:
            self.fail(name, f"must be 1 to {MAX_ID_CHARS} characters")
        return (value or "").strip()

    def address(self, name: str, normalize: Callable[[str], str | None], what: str) -> str:
        value = self.string(name)
        if value is None:
            return ""
        normalized = normalize(value) if len(value) <= 320 else None
        if normalized is None:
            self.fail(name, f"must be {what}")
        return normalized or ""

    def content(self, message_type: str) -> tuple[str, tuple[str, ...], datetime | None]:
        """body, attachments and timestamp, by the rules of models.py."""
        text = self.rule("body", check_body, message_type) or ""
        urls = self.rule("attachments", check_attachments, message_type) or ()
        sent_at = self.rule("timestamp", lambda value, _: check_sent_at(value), message_type)
        return text, urls, sent_at

    def rule(self, name: str, check: Callable[[Any, str], T], message_type: str) -> T | None:
        try:
            return check(self.body.get(name), message_type)
        except ContentError as exc:
            for index in exc.items or (None,):
                self.fail(name if index is None else f"{name}/{index}", str(exc))
            return None


_BIGINT_MAX = 2**63 - 1
_BIGINT_DIGITS = len(str(_BIGINT_MAX))


def parse_path_id(raw: str, what: str) -> int:
    """The id in a path (`what`: "conversation", "event", ...); NotFound if it names
    nothing."""
    # An id that is no integer, or one no bigint can hold, names nothing. The
    # length is checked first: int() refuses strings of over 4,300 digits.
    digits = raw.lstrip("0")
    if (
        raw.isascii()
        and raw.isdigit()
        and 0 < len(digits) <= _BIGINT_DIGITS
        and int(digits) <= _BIGINT_MAX
    ):
        return int(digits)
    raise NotFound(f"There is no {what} {raw[:40]!r}.")
