"""Parsing and validation of request input: from raw bytes and query strings to
typed values.

Pure functions, no I/O. Every problem found is reported with the JSON pointer of
its field, and all problems of a body are reported together. Hostile input
(deep nesting, NUL characters, lone surrogates, non-finite or enormous numbers,
huge strings or lists) is rejected here, so nothing downstream ever sees it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from messaging.errors import FieldError, InvalidRequest
from messaging.normalize import normalize_email, normalize_phone

MAX_DEPTH = 16
# Members of any one JSON list or object in a request body, unless the route
# allows more (the mock's script: 10,000).
MAX_LIST_ITEMS = 1000
MAX_BODY_CHARS = 100_000
MAX_ID_CHARS = 256
MAX_ATTACHMENTS = 10
MAX_URL_CHARS = 2048
# Lists: pageSize missing or 0 means the default; a larger one is cut to the bound.
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
# Idempotency-Key: visible ASCII and spaces (a structured-field string), bounded.
MAX_IDEMPOTENCY_KEY_CHARS = 256
_IDEMPOTENCY_KEY = re.compile(rf"[\x20-\x7e]{{1,{MAX_IDEMPOTENCY_KEY_CHARS}}}")
# Far past the end of any list, yet small enough that (page - 1) * MAX_PAGE_SIZE
# stays a bigint.
MAX_PAGE = 1_000_000_000

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})"
)
# The range of timestamps (sent_at) accepted from a provider or a client: from the
# Unix epoch to a day past this server's clock. A provider's clock is not trusted
# to the year 1, and a message from the far future would pin its conversation to
# the top of the list; a day of slack covers skewed clocks and zone mistakes.
EARLIEST_TIMESTAMP = datetime(1970, 1, 1, tzinfo=UTC)
MAX_FUTURE = timedelta(days=1)
_URL = re.compile(r"https?://[^\s\x00-\x1f\x7f]+", re.IGNORECASE)
# ASCII digits only: int() would also take "1_000", " 7" and non-ASCII digits.
_INTEGER = re.compile(r"-?[0-9]+")
# More digits than this are past every bound anyway: read as _HUGE, which spares
# int() a string of thousands of digits.
_MAX_DIGITS = 19
_HUGE: int = 10**_MAX_DIGITS


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """A validated provider webhook, ready to be stored."""

    channel: str  # 'sms' (SMS and MMS) or 'email'
    provider_message_id: str
    message_type: str  # 'sms', 'mms' or 'email'
    from_address: str  # normalised
    to_address: str  # normalised
    payload: str  # the body as received, re-serialised as JSON text


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


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A validated send (POST /api/messages/sms or /email), ready to be stored."""

    message_type: str  # 'sms', 'mms' or 'email'
    from_address: str  # normalised
    to_address: str  # normalised
    body: str  # '' for an MMS sent without text
    attachments: tuple[str, ...]
    timestamp: datetime  # aware, UTC

    @property
    def channel(self) -> str:
        """The provider that carries it: 'sms' (SMS and MMS) or 'email'."""
        return "email" if self.message_type == "email" else "sms"


def parse_json(raw: bytes, *, max_items: int = MAX_LIST_ITEMS) -> dict[str, Any]:
    """The JSON object in a request body, or InvalidRequest (400); max_items bounds
    the members of every list and object in it."""
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidRequest(f"The body is not valid JSON: {_short(exc)}") from None
    if not isinstance(value, dict):
        raise InvalidRequest("The body must be a JSON object.")
    problem = _hostile(value, "", 0, max_items)
    if problem:
        raise InvalidRequest("The body contains a value this service does not accept.", [problem])
    return value


def parse_sms_webhook(body: dict[str, Any]) -> InboundEvent:
    """Validate an inbound SMS/MMS from the SMS provider."""
    v = _Validator(body)
    message_type = v.choice("type", ("sms", "mms"))
    provider_id = v.identifier("messaging_provider_id")
    sender = v.address("from", normalize_phone, "a phone number (E.164, e.g. +12016661234)")
    recipient = v.address("to", normalize_phone, "a phone number (E.164, e.g. +12016661234)")
    v.message_body("body", allow_empty=message_type == "mms")
    v.attachments("attachments", required=message_type == "mms", allowed=message_type != "sms")
    v.timestamp("timestamp")
    v.raise_if_invalid("The SMS webhook is not valid.")
    return InboundEvent(
        channel="sms",
        provider_message_id=provider_id,
        message_type=message_type,
        from_address=sender,
        to_address=recipient,
        payload=json.dumps(body, ensure_ascii=False, separators=(",", ":")),
    )


def parse_email_webhook(body: dict[str, Any]) -> InboundEvent:
    """Validate an inbound email from the email provider."""
    v = _Validator(body)
    provider_id = v.identifier("xillio_id")
    sender = v.address("from", normalize_email, "an email address")
    recipient = v.address("to", normalize_email, "an email address")
    v.message_body("body", allow_empty=False)
    v.attachments("attachments", required=False, allowed=True)
    v.timestamp("timestamp")
    v.raise_if_invalid("The email webhook is not valid.")
    return InboundEvent(
        channel="email",
        provider_message_id=provider_id,
        message_type="email",
        from_address=sender,
        to_address=recipient,
        payload=json.dumps(body, ensure_ascii=False, separators=(",", ":")),
    )


def parse_sms_send(body: dict[str, Any]) -> OutboundMessage:
    """Validate an outbound SMS/MMS: the webhook's rules, without a provider id."""
    v = _Validator(body)
    message_type = v.choice("type", ("sms", "mms"))
    sender = v.address("from", normalize_phone, "a phone number (E.164, e.g. +12016661234)")
    recipient = v.address("to", normalize_phone, "a phone number (E.164, e.g. +12016661234)")
    text = v.message_body("body", allow_empty=message_type == "mms")
    urls = v.attachments(
        "attachments", required=message_type == "mms", allowed=message_type != "sms"
    )
    sent_at = v.timestamp("timestamp")
    v.raise_if_invalid("The SMS/MMS message is not valid.")
    assert sent_at is not None
    return OutboundMessage(message_type, sender, recipient, text, urls, sent_at)


def parse_email_send(body: dict[str, Any]) -> OutboundMessage:
    """Validate an outbound email: the webhook's rules, without a provider id."""
    v = _Validator(body)
    sender = v.address("from", normalize_email, "an email address")
    recipient = v.address("to", normalize_email, "an email address")
    text = v.message_body("body", allow_empty=False)
    urls = v.attachments("attachments", required=False, allowed=True)
    sent_at = v.timestamp("timestamp")
    v.raise_if_invalid("The email message is not valid.")
    assert sent_at is not None
    return OutboundMessage("email", sender, recipient, text, urls, sent_at)


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with a Z, the form of the API's payloads.

    Safe for any value the database can hand back: asyncpg reads PostgreSQL's
    -infinity and infinity as the naive datetime.min and datetime.max, which are
    written as the first and last instants of the calendar."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def timestamp_in_range(value: datetime, now: datetime | None = None) -> bool:
    """Whether a timestamp lies in the accepted range: from EARLIEST_TIMESTAMP to
    MAX_FUTURE past now."""
    return EARLIEST_TIMESTAMP <= value <= (now or datetime.now(UTC)) + MAX_FUTURE


def parse_timestamp(raw: str) -> datetime | None:
    """An RFC 3339 timestamp as an aware UTC datetime, or None."""
    if not _RFC3339.fullmatch(raw):
        return None
    try:
        parsed = datetime.fromisoformat(raw.upper().replace(" ", "T").replace("Z", "+00:00"))
        # An offset can carry the first or last day of the calendar out of range.
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


TIMESTAMP_RANGE_MESSAGE = (
    "must lie between 1970-01-01T00:00:00Z and 24 hours past the server's clock"
)


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

    def message_body(self, name: str, *, allow_empty: bool) -> str:
        value = self.body.get(name)
        if value is None and allow_empty:
            return ""
        value = self.string(name)
        if value is None:
            return ""
        if not allow_empty and not value.strip():
            self.fail(name, "must not be empty")
        elif len(value) > MAX_BODY_CHARS:
            self.fail(name, f"must be at most {MAX_BODY_CHARS} characters")
        return value

    def attachments(self, name: str, *, required: bool, allowed: bool) -> tuple[str, ...]:
        value = self.body.get(name)
        if value is None or value == []:
            if required:
                self.fail(name, "must list at least one attachment URL")
            return ()
        if not isinstance(value, list):
            self.fail(name, "must be a list of URLs or null")
            return ()
        if not allowed:
            self.fail(name, "an SMS carries no attachments (send type mms)")
            return ()
        if len(value) > MAX_ATTACHMENTS:
            self.fail(name, f"must list at most {MAX_ATTACHMENTS} URLs")
            return ()
        for i, url in enumerate(value):
            if not isinstance(url, str) or len(url) > MAX_URL_CHARS or not _URL.fullmatch(url):
                self.fail(f"{name}/{i}", "must be an http(s) URL")
        return tuple(value)

    def timestamp(self, name: str) -> datetime | None:
        value = self.string(name)
        if value is None:
            return None
        parsed = parse_timestamp(value)
        if parsed is None:
            self.fail(name, "must be an RFC 3339 date-time, e.g. 2024-11-01T14:00:00Z")
        elif not timestamp_in_range(parsed):
            self.fail(name, TIMESTAMP_RANGE_MESSAGE)
            return None
        return parsed


def _hostile(value: Any, pointer: str, depth: int, max_items: int) -> FieldError | None:
    """The first value PostgreSQL's jsonb or our limits cannot take, if any."""
    if depth > MAX_DEPTH:
        return FieldError(pointer or "/", f"nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        return _bad_string(value, pointer)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return None if abs(value) < 10**18 else FieldError(pointer, "number is too large")
    if isinstance(value, float):
        return None if math.isfinite(value) else FieldError(pointer, "number is not finite")
    if isinstance(value, list):
        if len(value) > max_items:
            return FieldError(pointer or "/", f"list has more than {max_items} items")
        for i, item in enumerate(value):
            problem = _hostile(item, f"{pointer}/{i}", depth + 1, max_items)
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        if len(value) > max_items:
            return FieldError(pointer or "/", f"object has more than {max_items} members")
        for key, item in value.items():
            key_problem = _bad_string(key, pointer)
            if key_problem:
                return key_problem
            problem = _hostile(item, f"{pointer}/{_escape(key)}", depth + 1, max_items)
            if problem:
                return problem
        return None
    return FieldError(pointer, "unsupported value")


def _bad_string(value: str, pointer: str) -> FieldError | None:
    if "\x00" in value:
        return FieldError(pointer or "/", "contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return FieldError(pointer or "/", "contains an unpaired surrogate")
    return None


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")[:100]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _short(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc).splitlines()[0][:200]
