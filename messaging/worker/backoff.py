"""The retry schedule: exponential, capped, jittered (RetryPolicy). Pure, no I/O.

delay(attempt) = min(cap, base x 2^(attempt-1)), then jittered down into
[delay/2, delay] ("equal jitter"): never later than the schedule promises, never
sooner than half of it, and spread out so that events (or listeners) that failed
together do not all come back at the same instant.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

# 2**62 x any sane base is far beyond every cap; the exponent stops growing here
# so that a huge attempt number cannot overflow the float.
_MAX_EXPONENT = 62


def schedule(attempt: int, *, base: float, cap: float) -> float:
    """The un-jittered delay before retry number `attempt` (1 = the first retry)."""
    if attempt < 1:
        raise ValueError(f"attempt must be at least 1, not {attempt}")
    return min(cap, base * 2.0 ** min(attempt - 1, _MAX_EXPONENT))


def delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    rng: Callable[[], float] = random.random,
) -> float:
    """The jittered delay before retry number `attempt`, in [schedule/2, schedule].

    `rng` returns a float in [0, 1); tests pass their own to pin the bounds.
    """
    full = schedule(attempt, base=base, cap=cap)
    return full / 2 + (full / 2) * rng()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The retry schedule of failed work (events and sends alike): attempts
    allowed, and the jittered delay before each retry."""

    max_attempts: int
    base_s: float
    cap_s: float

    def delay_s(self, attempt: int) -> float:
        return delay(attempt, base=self.base_s, cap=self.cap_s)
