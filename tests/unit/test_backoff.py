import pytest

from messaging.worker import backoff


def test_schedule_doubles_from_the_base() -> None:
    assert [backoff.schedule(n, base=0.5, cap=300) for n in (1, 2, 3, 4)] == [0.5, 1, 2, 4]


def test_schedule_is_capped() -> None:
    assert backoff.schedule(10, base=0.5, cap=60) == 60
    assert backoff.schedule(10_000, base=0.5, cap=60) == 60  # no overflow


@pytest.mark.parametrize("attempt", [1, 2, 5, 12, 40])
def test_jitter_stays_within_half_and_whole_of_the_schedule(attempt: int) -> None:
    full = backoff.schedule(attempt, base=0.5, cap=300)
    assert backoff.delay(attempt, base=0.5, cap=300, rng=lambda: 0.0) == full / 2
    assert backoff.delay(attempt, base=0.5, cap=300, rng=lambda: 0.999999) == pytest.approx(full)
    delays = [backoff.delay(attempt, base=0.5, cap=300) for _ in range(500)]
    assert all(full / 2 <= d <= full for d in delays)
    assert len(set(delays)) > 400  # actually jittered


def test_jitter_never_exceeds_the_cap() -> None:
    assert max(backoff.delay(30, base=1, cap=7) for _ in range(500)) <= 7


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError):
        backoff.schedule(0, base=1, cap=2)
