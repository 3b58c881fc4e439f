"""When the client tries again (pure, no I/O): capped exponential backoff with full
jitter, and the service's Retry-After read in both of its forms.

Full jitter (a uniform draw between 0 and the capped exponential) rather than
the worker's equal jitter: many clients cut off by the same outage or restart
come back spread over the whole window instead of in a wave at its middle.
Retry-After is a floor: the service knows when it will have room again.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# Past this exponent every sane base is beyond every cap; it stops the float
# from overflowing on a stream that has failed for days.
_MAX_EXPONENT = 62


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (RFC 9110: delay-seconds or an
    HTTP-date; a date in the past means now), or None for no header or one that
    is neither."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        # RFC 9110's IMF-fixdate is always GMT; the obsolete forms carry no zone.
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True, slots=True)
class Backoff:
    """The delay before retry number `attempt` (1 = the first retry): a uniform
    draw in [0, min(cap, base x 2^(attempt-1))], never shorter than a
    Retry-After (nor a stream's `retry:` field) the service sent."""

    base_s: float
    cap_s: float
    rng: Callable[[], float] = field(default=random.random)

    def delay_s(self, attempt: int, floor_s: float | None = None) -> float:
        if attempt < 1:
            raise ValueError(f"attempt must be at least 1, not {attempt}")
        ceiling = min(self.cap_s, self.base_s * 2.0 ** min(attempt - 1, _MAX_EXPONENT))
        return max(ceiling * self.rng(), floor_s or 0.0)
