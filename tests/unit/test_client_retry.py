"""The client's retry schedule and its reading of Retry-After (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from messaging.client.retry import Backoff, parse_retry_after

NOW = datetime(2024, 11, 1, 14, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("0", 0.0),
        ("7", 7.0),
        (" 120 ", 120.0),
        ("Fri, 01 Nov 2024 14:00:30 GMT", 30.0),
        # The obsolete forms RFC 9110 still asks recipients to take.
        ("Friday, 01-Nov-24 14:00:30 GMT", 30.0),
        ("Fri Nov  1 14:00:30 2024", 30.0),
        # A date past means now.
        ("Fri, 01 Nov 2024 13:00:00 GMT", 0.0),
        ("-1", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        ("٣", None),
    ],
)
def test_retry_after_in_seconds_or_as_a_date(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


def test_the_backoff_is_a_full_jitter_under_a_capped_exponential() -> None:
    top = Backoff(0.1, 5.0, rng=lambda: 0.999999)
    bottom = Backoff(0.1, 5.0, rng=lambda: 0.0)
    ceilings = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    for attempt, ceiling in enumerate(ceilings, start=1):
        assert top.delay_s(attempt) == pytest.approx(ceiling, rel=1e-5)
        assert bottom.delay_s(attempt) == 0.0
    # Days of failures do not overflow.
    assert top.delay_s(10**6) == pytest.approx(5.0, rel=1e-5)


def test_retry_after_is_a_floor_under_the_jitter() -> None:
    backoff = Backoff(0.1, 5.0, rng=lambda: 0.5)
    assert backoff.delay_s(1, 2.0) == 2.0
    assert backoff.delay_s(8, 1.0) == 2.5
    assert backoff.delay_s(1, 0.0) == 0.05
    with pytest.raises(ValueError):
        backoff.delay_s(0)
