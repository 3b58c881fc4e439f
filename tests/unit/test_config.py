import pytest

from messaging.config import ConfigError, Settings
from messaging.signatures import encode_secret


def test_defaults_without_environment() -> None:
    settings = Settings.from_env({})
    assert settings.database_url is None
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)


def test_reads_every_knob() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://x@h/db",
            "PORT": "9000",
            "MESSAGING_BATCH_SIZE": "50",
            "MESSAGING_BATCHES_IN_FLIGHT": "3",
            "MESSAGING_CLAIM_TIMEOUT_SECS": "2.5",
            "MESSAGING_MAX_RETRIES": "3",
            "MESSAGING_BACKOFF_BASE_MS": "10",
            "MESSAGING_SWEEP_INTERVAL_MS": "250",
            "MESSAGING_MAX_BODY_BYTES": "2048",
            "MESSAGING_GROUP_COMMIT": "off",
        }
    )
    assert settings.database_url == "postgresql://x@h/db"
    assert settings.port == 9000
    assert settings.batch_size == 50
    assert settings.batches_in_flight == 3
    assert settings.claim_timeout_secs == 2.5
    assert settings.max_retries == 3
    assert settings.backoff_base_ms == 10
    assert settings.sweep_interval_ms == 250
    assert settings.max_body_bytes == 2048
    assert settings.group_commit is False


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "eighty"),
        ("PORT", "70000"),
        ("MESSAGING_BATCH_SIZE", "0"),
        ("MESSAGING_BATCHES_IN_FLIGHT", "0"),
        ("MESSAGING_CLAIM_TIMEOUT_SECS", "soon"),
        ("MESSAGING_GROUP_COMMIT", "maybe"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_bad_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})


def test_replace_changes_a_copy_and_leaves_the_original() -> None:
    # What the tests' fixtures lean on: a worker's settings.replace(...) must not
    # change the settings the test (and its other workers) were given.
    settings = Settings.from_env({"MESSAGING_BATCH_SIZE": "50"})
    changed = settings.replace(batch_size=7, listen=False)
    assert (changed.batch_size, changed.listen) == (7, False)
    assert (settings.batch_size, settings.listen) == (50, True)
    assert changed.replace(batch_size=50, listen=True) == settings


def test_the_heartbeat_period_is_5_s_unless_set() -> None:
    assert Settings.from_env({}).heartbeat_secs == 5.0
    assert Settings.from_env({"MESSAGING_HEARTBEAT_SECS": "0.5"}).heartbeat_secs == 0.5
    for bad in ("0", "soon", "3601"):
        with pytest.raises(ConfigError, match="MESSAGING_HEARTBEAT_SECS"):
            Settings.from_env({"MESSAGING_HEARTBEAT_SECS": bad})


def test_the_embedded_database_serves_the_api_open_with_the_mock_providers() -> None:
    settings = Settings.from_env({})
    assert (settings.api_auth, settings.mock_providers) == ("none", True)


def test_a_database_url_means_api_keys_and_no_mock_providers() -> None:
    settings = Settings.from_env({"DATABASE_URL": "postgresql://x@h/db"})
    assert (settings.api_auth, settings.mock_providers) == ("keys", False)
    # Settings built by hand for a database are closed too.
    assert (Settings(database_url="postgresql://x@h/db").api_auth, Settings().mock_providers) == (
        "keys",
        False,
    )


@pytest.mark.parametrize("database_url", [None, "postgresql://x@h/db"])
def test_auth_and_mock_providers_can_be_set_either_way(database_url: str | None) -> None:
    env = {"DATABASE_URL": database_url} if database_url else {}
    opened = Settings.from_env(
        {**env, "MESSAGING_API_AUTH": "NONE", "MESSAGING_MOCK_PROVIDERS": "true"}
    )
    assert (opened.api_auth, opened.mock_providers) == ("none", True)
    closed = Settings.from_env(
        {**env, "MESSAGING_API_AUTH": "keys", "MESSAGING_MOCK_PROVIDERS": "0"}
    )
    assert (closed.api_auth, closed.mock_providers) == ("keys", False)


@pytest.mark.parametrize(
    ("name", "value"), [("MESSAGING_API_AUTH", "basic"), ("MESSAGING_MOCK_PROVIDERS", "perhaps")]
)
def test_a_bad_auth_or_mock_setting_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({"DATABASE_URL": "postgresql://x@h/db", name: value})


def test_webhook_secrets_are_comma_separated_decoded_and_kept_out_of_repr() -> None:
    old, new = encode_secret(bytes(range(32))), encode_secret(bytes(range(1, 25)))
    settings = Settings.from_env(
        {"MESSAGING_SMS_WEBHOOK_SECRETS": f" {new} , {old},", "MESSAGING_EMAIL_WEBHOOK_SECRETS": ""}
    )
    assert settings.webhook_secrets("sms") == (bytes(range(1, 25)), bytes(range(32)))
    assert settings.webhook_secrets("email") == ()
    assert old not in repr(settings) and "whsec_" not in repr(settings)
    assert str(bytes(range(32))) not in repr(settings)


@pytest.mark.parametrize(
    "value",
    [
        "s3cret-password",
        "whsec_%%%",
        "whsec_c2hvcnQ=",  # "short": 5 bytes
        f"{encode_secret(bytes(32))},whsec_c2hvcnQ=",
    ],
)
@pytest.mark.parametrize(
    "name", ["MESSAGING_SMS_WEBHOOK_SECRETS", "MESSAGING_EMAIL_WEBHOOK_SECRETS"]
)
def test_a_bad_webhook_secret_names_the_variable_and_never_prints_the_value(
    name: str, value: str
) -> None:
    with pytest.raises(ConfigError, match=name) as caught:
        Settings.from_env({name: value})
    for item in value.split(","):
        assert item not in str(caught.value)


@pytest.mark.parametrize(
    ("env", "terminal", "expected"),
    [
        ({}, False, "json"),
        ({}, True, "text"),
        ({"LOG_FORMAT": ""}, True, "text"),
        ({"LOG_FORMAT": "json"}, True, "json"),
        ({"LOG_FORMAT": "TEXT"}, False, "text"),
    ],
)
def test_log_format_is_text_on_a_terminal_json_elsewhere_unless_set(
    env: dict[str, str], terminal: bool, expected: str
) -> None:
    assert Settings.from_env(env, terminal=terminal).log_format == expected


def test_the_worker_port_is_off_unless_set() -> None:
    assert Settings.from_env({}).worker_port == 0
    assert Settings.from_env({"MESSAGING_WORKER_PORT": "9091"}).worker_port == 9091
    with pytest.raises(ConfigError, match="MESSAGING_WORKER_PORT"):
        Settings.from_env({"MESSAGING_WORKER_PORT": "65536"})


def test_the_listen_and_read_urls_default_to_the_database_and_can_be_set() -> None:
    primary = "postgresql://app@pgbouncer:6432/messaging"
    settings = Settings.from_env({"DATABASE_URL": primary})
    assert settings.listen_database_url is None and settings.read_database_url is None
    assert settings.read_max_lag_ms == 1000
    settings = Settings.from_env(
        {
            "DATABASE_URL": primary,
            "MESSAGING_LISTEN_DATABASE_URL": "postgresql://app@primary:5432/messaging",
            "MESSAGING_READ_DATABASE_URL": "postgres://app@replica:5432/messaging",
            "MESSAGING_READ_MAX_LAG_MS": "250",
        }
    )
    assert settings.listen_database_url == "postgresql://app@primary:5432/messaging"
    assert settings.read_database_url == "postgres://app@replica:5432/messaging"
    assert settings.read_max_lag_ms == 250


@pytest.mark.parametrize("name", ["MESSAGING_LISTEN_DATABASE_URL", "MESSAGING_READ_DATABASE_URL"])
def test_another_address_of_the_database_needs_database_url_and_a_postgres_url(
    name: str,
) -> None:
    with pytest.raises(ConfigError, match=f"{name} is set but DATABASE_URL is not"):
        Settings.from_env({name: "postgresql://app@primary/messaging"})
    with pytest.raises(ConfigError, match=f"{name}='http://primary' is not a valid postgresql"):
        Settings.from_env({"DATABASE_URL": "postgresql://app@h/db", name: "http://primary"})
