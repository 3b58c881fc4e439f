"""Settings: one frozen object, read from the environment once, in the entry point.

Nothing else in the package reads os.environ; everything receives a Settings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class ConfigError(Exception):
    """A setting in the environment is not usable; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Settings:
    # None means: start the embedded PostgreSQL and use it.
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 256 * 1024
    # Connections in the pool shared by the HTTP handlers and the ingest writers.
    pool_size: int = 10
    # How many group commits may be in flight at once (see store/ingest.py).
    ingest_writers: int = 2
    # Rows at most in one group commit.
    ingest_max_batch: int = 1000
    # Off only to measure what commit sharing buys (bench/).
    group_commit: bool = True
    # Worker knobs.
    batch_size: int = 500
    claim_timeout_secs: float = 60.0
    max_retries: int = 5
    backoff_base_ms: int = 500
    backoff_cap_ms: int = 300_000
    sweep_interval_ms: int = 1000
    listen: bool = True
    # Where the embedded server keeps its data when no DATABASE_URL is given.
    embedded_data_dir: str = ".pgdata/run"
    log_level: str = "INFO"
    log_format: str = "json"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Build settings from an environment mapping; raise ConfigError naming the
        variable for any value that cannot be used."""
        d = cls()
        return cls(
            database_url=env.get("DATABASE_URL") or None,
            host=_read(env, "HOST", str, d.host, _nonempty),
            port=_read(env, "PORT", int, d.port, _between(1, 65535)),
            max_body_bytes=_read(
                env, "MESSAGING_MAX_BODY_BYTES", int, d.max_body_bytes, _between(1024, 64 << 20)
            ),
            pool_size=_read(env, "MESSAGING_POOL_SIZE", int, d.pool_size, _between(2, 500)),
            ingest_writers=_read(
                env, "MESSAGING_INGEST_WRITERS", int, d.ingest_writers, _between(1, 64)
            ),
            ingest_max_batch=_read(
                env, "MESSAGING_INGEST_MAX_BATCH", int, d.ingest_max_batch, _between(1, 10_000)
            ),
            group_commit=_read(env, "MESSAGING_GROUP_COMMIT", _bool, d.group_commit),
            batch_size=_read(env, "MESSAGING_BATCH_SIZE", int, d.batch_size, _between(1, 10_000)),
            claim_timeout_secs=_read(
                env,
                "MESSAGING_CLAIM_TIMEOUT_SECS",
                float,
                d.claim_timeout_secs,
                _between(0.1, 86_400),
            ),
            max_retries=_read(env, "MESSAGING_MAX_RETRIES", int, d.max_retries, _between(1, 100)),
            backoff_base_ms=_read(
                env, "MESSAGING_BACKOFF_BASE_MS", int, d.backoff_base_ms, _between(1, 3_600_000)
            ),
            backoff_cap_ms=_read(
                env, "MESSAGING_BACKOFF_CAP_MS", int, d.backoff_cap_ms, _between(1, 86_400_000)
            ),
            sweep_interval_ms=_read(
                env,
                "MESSAGING_SWEEP_INTERVAL_MS",
                int,
                d.sweep_interval_ms,
                _between(10, 3_600_000),
            ),
            listen=_read(env, "MESSAGING_LISTEN", _bool, d.listen),
            embedded_data_dir=_read(
                env, "MESSAGING_EMBEDDED_DATA_DIR", str, d.embedded_data_dir, _nonempty
            ),
            log_level=_read(env, "LOG_LEVEL", str.upper, d.log_level, _one_of(_LEVELS)),
            log_format=_read(env, "LOG_FORMAT", str.lower, d.log_format, _one_of(("json", "text"))),
        )

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _read(
    env: Mapping[str, str],
    name: str,
    parse: Callable[[str], T],
    default: T,
    check: Callable[[T], str | None] | None = None,
) -> T:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = parse(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a valid {_kind(parse)}") from None
    problem = check(value) if check else None
    if problem:
        raise ConfigError(f"{name}={raw!r}: {problem}")
    return value


def _kind(parse: Callable[[str], object]) -> str:
    return {int: "integer", float: "number", _bool: "boolean (true/false)"}.get(parse, "value")


def _bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _between(low: float, high: float) -> Callable[[float], str | None]:
    def check(value: float) -> str | None:
        return None if low <= value <= high else f"must be between {low:g} and {high:g}"

    return check


def _nonempty(value: str) -> str | None:
    return None if value else "must not be empty"


def _one_of(choices: tuple[str, ...]) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return check
