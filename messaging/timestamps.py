"""Timestamps: the RFC 3339 form of the API and the providers, and the range of
times the service accepts (pure).

A message's time (sent_at) comes from a provider or a client, whose clock is not
trusted to the year 1: it must lie from EARLIEST to MAX_FUTURE past the server's
clock. A message from the far future would pin its conversation to the top of
the list; a day of slack covers skewed clocks and time-zone mistakes.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
MAX_FUTURE = timedelta(days=1)
RANGE_MESSAGE = "must lie between 1970-01-01T00:00:00Z and 24 hours past the server's clock"

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})"
)


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


def in_range(value: datetime, now: datetime | None = None) -> bool:
    """Whether a time lies in the accepted range: from EARLIEST to MAX_FUTURE past now."""
    return EARLIEST <= value <= (now or datetime.now(UTC)) + MAX_FUTURE


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with a Z, the form of the API's payloads.

    Safe for any value the database can hand back: asyncpg reads PostgreSQL's
    -infinity and infinity as the naive datetime.min and datetime.max, which are
    written as the first and last instants of the calendar."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
