from datetime import UTC, datetime, timedelta

import pytest

from messaging.config import ConfigError, Settings
from messaging.mock.providers import MockConfig, MockProvider
from messaging.providers.client import MAX_RETRY_AFTER, retry_after

NOW = datetime(2024, 11, 1, 14, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("2", NOW + timedelta(seconds=2)),
        (" 0 ", NOW),
        ("Fri, 01 Nov 2024 14:00:05 GMT", NOW + timedelta(seconds=5)),
        ("Fri, 01 Nov 2024 13:00:00 GMT", NOW),  # in the past: no wait
        ("99999999999999", NOW + MAX_RETRY_AFTER),
        ("Sat, 01 Nov 2025 14:00:00 GMT", NOW + MAX_RETRY_AFTER),
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after(header: str | None, expected: datetime | None) -> None:
    assert retry_after(header, NOW) == expected


def answers(seed: int, n: int = 200) -> list[str]:
    mock = MockProvider(
        "sms", "id", MockConfig(rates={"429": 0.2, "500": 0.1, "hang": 0.05}, seed=seed)
    )
    return [mock.next_answer(None)[0] for _ in range(n)]


def test_mock_draws_are_reproducible_by_seed() -> None:
    assert answers(5) == answers(5)
    assert answers(5) != answers(6)
    counts = {a: answers(5).count(a) for a in ("429", "500", "hang", "ok")}
    assert 20 <= counts["429"] <= 60 and counts["ok"] > 100


def test_mock_script_comes_before_draws_and_repeats_come_first() -> None:
    mock = MockProvider("sms", "id", MockConfig(rates={"500": 1.0}, script=["400", "ok"]))
    assert mock.next_answer("k")[0] == "400"
    assert mock.next_answer("k")[0] == "ok"
    delivery = mock.accept("k", {})
    assert mock.next_answer("k") == ("repeat", delivery)
    assert mock.next_answer("other")[0] == "500"


def test_provider_settings_default_to_this_service() -> None:
    settings = Settings.from_env({"HOST": "0.0.0.0", "PORT": "9000"})
    assert settings.sms_provider_url == "http://127.0.0.1:9000/mock/sms"
    assert settings.email_provider_url == "http://127.0.0.1:9000/mock/email"
    assert settings.mock_webhook_url == "http://127.0.0.1:9000"


def test_provider_and_mock_settings() -> None:
    settings = Settings.from_env(
        {
            "MESSAGING_SMS_PROVIDER_URL": "https://sms.example.com/v1/",
            "MESSAGING_PROVIDER_TIMEOUT_MS": "250",
            "MESSAGING_MOCK_PROVIDERS": "off",
            "MESSAGING_MOCK_FAULTS": "429=0.1, 500=0.05,hang=0",
            "MESSAGING_MOCK_SEED": "42",
        }
    )
    assert settings.sms_provider_url == "https://sms.example.com/v1"
    assert settings.provider_timeout_ms == 250
    assert settings.mock_providers is False
    assert settings.mock_faults == (("429", 0.1), ("500", 0.05), ("hang", 0.0))
    assert settings.mock_seed == 42


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MESSAGING_SMS_PROVIDER_URL", "ftp://x"),
        ("MESSAGING_EMAIL_PROVIDER_URL", "localhost:8080"),
        ("MESSAGING_MOCK_FAULTS", "503=0.1"),
        ("MESSAGING_MOCK_FAULTS", "429=0.7,500=0.7"),
        ("MESSAGING_MOCK_FAULTS", "429"),
        ("MESSAGING_MOCK_FAULTS", "hang=nan"),
        ("MESSAGING_PROVIDER_TIMEOUT_MS", "0"),
    ],
)
def test_bad_provider_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})
