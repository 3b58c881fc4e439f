"""What a delivery attempt's outcome makes of a send (worker/delivery.py, pure)."""

from __future__ import annotations

from datetime import UTC, datetime

from messaging.errors import ProviderRejected, ProviderRetryLater
from messaging.providers.client import Accepted
from messaging.worker.backoff import RetryPolicy
from messaging.worker.delivery import Failed, Retry, Sent, next_step

POLICY = RetryPolicy(max_attempts=3, base_s=1.0, cap_s=10.0)
LATER = datetime(2030, 1, 1, tzinfo=UTC)


def test_accepted_is_sent_with_the_providers_id() -> None:
    assert next_step(Accepted("p-1"), 1, POLICY) == Sent("p-1")
    assert next_step(Accepted("p-1"), 3, POLICY) == Sent("p-1")


def test_rejected_fails_at_once() -> None:
    assert next_step(ProviderRejected("refused 400", 400), 1, POLICY) == Failed("refused 400")


def test_retry_later_keeps_retry_after_and_backs_off() -> None:
    retry = next_step(ProviderRetryLater("answered 429", LATER), 2, POLICY)
    assert isinstance(retry, Retry)
    assert (retry.error, retry.not_before) == ("answered 429", LATER)
    assert 1.0 <= retry.delay_s <= 2.0  # attempt 2: base x 2, jittered into [half, whole]
    first = next_step(ProviderRetryLater("answered 500"), 1, POLICY)
    assert isinstance(first, Retry) and first.not_before is None
    assert 0.5 <= first.delay_s <= 1.0


def test_the_last_attempt_fails_with_the_reason() -> None:
    assert next_step(ProviderRetryLater("answered 500"), 3, POLICY) == Failed(
        "gave up after 3 attempts: answered 500"
    )


def test_a_long_reason_is_cut() -> None:
    step = next_step(ProviderRejected("x" * 5000, 400), 1, POLICY)
    assert isinstance(step, Failed) and len(step.error) == 2000
