"""Settings: one frozen object, read from the environment once, in the entry point.

Nothing else in the package reads os.environ; everything receives a Settings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit

from messaging.signatures import decode_secret

T = TypeVar("T")


class ConfigError(Exception):
    """A setting in the environment is not usable; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Settings:
    # None means: start the embedded PostgreSQL and use it. It may go through a
    # transaction pooler (PgBouncer): pooled connections keep no session state.
    database_url: str | None = None
    # The LISTEN connection's own URL: a direct session on the primary, never a
    # transaction pooler (a LISTEN outlives the transaction that ran it). None:
    # database_url.
    listen_database_url: str | None = None
    # Where the conversation list is read: a streaming replica (store/replica.py).
    # None: the primary. A replica that is down, or further behind the primary
    # than read_max_lag_ms, is passed over for the primary until it catches up.
    read_database_url: str | None = None
    read_max_lag_ms: int = 1000
    host: str = "127.0.0.1"
    port: int = 8080
    # Where `messaging worker` serves /metrics, /healthz and /readyz (on host); 0:
    # nowhere. `serve` has its own port and needs none.
    worker_port: int = 0
    max_body_bytes: int = 256 * 1024
    # A request body must have arrived in full this long after its headers (408),
    # and at most this many requests may be waiting for their body at once (503):
    # a client that trickles its body holds neither a connection nor memory long.
    body_read_timeout_ms: int = 10_000
    max_body_reads: int = 256
    # List reads served at once by one process (the rest wait their turn), so that
    # pages of long messages cannot crowd webhooks off the event loop and the pool.
    max_concurrent_reads: int = 4
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
    # Claim loops of one worker process while there is a backlog: a batch is
    # prepared in Python while the database writes another.
    batches_in_flight: int = 2
    claim_timeout_secs: float = 60.0
    max_retries: int = 5
    backoff_base_ms: int = 500
    backoff_cap_ms: int = 300_000
    sweep_interval_ms: int = 1000
    listen: bool = True
    # How often each process writes its row in the processes table (heartbeat.py),
    # for the operator's view; a row unwritten for three periods is stale.
    heartbeat_secs: float = 5.0
    # The event stream (GET /api/events): streams one process serves at once
    # (one more is answered 503); events a consumer may fall behind before it
    # is disconnected; the heartbeat's period; how long the stream's log keeps an
    # event for consumers that resume (older positions are answered 410).
    max_streams: int = 1000
    stream_buffer_events: int = 1000
    stream_heartbeat_secs: float = 15.0
    stream_retention_secs: float = 86_400.0
    # Retention (worker/retention.py): processed inbound events are deleted this
    # long after they were received, which is also how long a provider's retry
    # is answered as a duplicate (its message is never made twice, even later);
    # a send's Idempotency-Key is forgotten this long after its first use.
    # 0 keeps them for good. Dead letters, messages and conversations are never
    # pruned.
    event_retention_secs: float = 7 * 86_400.0
    idempotency_key_retention_secs: float = 86_400.0
    # Rows deleted per transaction, and the pause after each: short locks and
    # small WAL bursts, one batch at a time across every worker process. About
    # 4,500 rows a second at most: a delete writes about a page of WAL per ten
    # events (full-page images), and at 16,000 a second (50 ms pauses) ingest's
    # p99 rose 1.75x while a million went (bench section 11).
    prune_batch_rows: int = 1000
    prune_pause_ms: int = 200
    # Where sends go: one base URL per provider. The defaults are this service's own
    # mock providers (/mock), so that a fresh `make run` delivers end to end.
    sms_provider_url: str = "http://127.0.0.1:8080/mock/sms"
    email_provider_url: str = "http://127.0.0.1:8080/mock/email"
    # Sends one worker has in flight to the providers at once.
    send_concurrency: int = 32
    # One provider request, connecting included, before it counts as timed out
    # (and is retried: the idempotency key makes that safe).
    provider_timeout_ms: int = 5000
    # The mock providers: served under /mock by `serve`, and alone by `messaging
    # mock-providers`. From the environment, on by default only with the embedded
    # PostgreSQL (from_env); off here, so that settings built by hand for a real
    # database do not serve them unasked.
    mock_providers: bool = False
    # Where the mock providers deliver inbound traffic: this service's base URL.
    mock_webhook_url: str = "http://127.0.0.1:8080"
    # The mock's answers at start-up, for both providers: (fault, rate) pairs, with
    # faults '429', '500', '400' and 'hang'; the rest are accepted.
    mock_faults: tuple[tuple[str, float], ...] = ()
    # Seed of the mock's draws; None: a random one (the mock reports it).
    mock_seed: int | None = None
    # Retry-After of the mock's 429s, in seconds.
    mock_retry_after_secs: int = 1
    # How long a 'hang' holds its answer back.
    mock_hang_secs: float = 30.0
    # The HMAC keys (decoded from their whsec_ form) that webhooks must be signed
    # with, per channel: several while a secret is rotated. Empty: that channel's
    # webhooks are taken unsigned. Kept out of repr, so that settings never print them.
    sms_webhook_secrets: tuple[bytes, ...] = field(default=(), repr=False)
    email_webhook_secrets: tuple[bytes, ...] = field(default=(), repr=False)
    # Where the embedded server keeps its data when no DATABASE_URL is given.
    embedded_data_dir: str = ".pgdata/run"
    log_level: str = "INFO"
    # From the environment, 'text' by default when standard error is a terminal
    # (from_env's terminal): a person reads it there, a log collector everywhere else.
    log_format: str = "json"
    # 'summary': a line per request answered 400 or above and a periodic summary
    # of the rest; 'all': a line per request (http/access_log.py).
    access_log: str = "summary"
    # 'keys': the API's routes (not the webhooks, not /healthz and the like) need
    # an API key with the route's scope (http/auth.py); 'none': anyone may call
    # them. From the environment, 'none' by default only with the embedded
    # PostgreSQL (local development, `make run`); 'keys' here and whenever
    # DATABASE_URL is set, so that a real database is never served open by default.
    api_auth: str = "keys"

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, terminal: bool = False) -> Settings:
        """Build settings from an environment mapping; raise ConfigError naming the
        variable for any value that cannot be used. `terminal`: whether the logs go
        to a terminal (the entry point looks), which makes text their default format."""
        d = cls()
        host = _read(env, "HOST", str, d.host, _nonempty)
        port = _read(env, "PORT", int, d.port, _between(1, 65535))
        # The defaults point at this very service (its /mock and its webhooks).
        own_url = f"http://{_reachable(host)}:{port}"
        database_url = env.get("DATABASE_URL") or None
        # The embedded PostgreSQL is a developer's machine: open API and the mock
        # providers. A DATABASE_URL is a deployment: keys, and no mock.
        embedded = database_url is None
        listen_database_url = _read(env, "MESSAGING_LISTEN_DATABASE_URL", _pg_url, None)
        read_database_url = _read(env, "MESSAGING_READ_DATABASE_URL", _pg_url, None)
        for name, value in (
            ("MESSAGING_LISTEN_DATABASE_URL", listen_database_url),
            ("MESSAGING_READ_DATABASE_URL", read_database_url),
        ):
            if value and embedded:
                raise ConfigError(
                    f"{name} is set but DATABASE_URL is not: it names another address of"
                    " the same database, so set DATABASE_URL too (without it the embedded"
                    " PostgreSQL is used)"
                )
        return cls(
            database_url=database_url,
            listen_database_url=listen_database_url,
            read_database_url=read_database_url,
            read_max_lag_ms=_read(
                env, "MESSAGING_READ_MAX_LAG_MS", int, d.read_max_lag_ms, _between(1, 3_600_000)
            ),
            host=host,
            port=port,
            worker_port=_read(env, "MESSAGING_WORKER_PORT", int, d.worker_port, _between(0, 65535)),
            max_body_bytes=_read(
                env, "MESSAGING_MAX_BODY_BYTES", int, d.max_body_bytes, _between(1024, 64 << 20)
            ),
            body_read_timeout_ms=_read(
                env,
                "MESSAGING_BODY_READ_TIMEOUT_MS",
                int,
                d.body_read_timeout_ms,
                _between(100, 600_000),
            ),
            max_body_reads=_read(
                env, "MESSAGING_MAX_BODY_READS", int, d.max_body_reads, _between(1, 100_000)
            ),
            max_concurrent_reads=_read(
                env,
                "MESSAGING_MAX_CONCURRENT_READS",
                int,
                d.max_concurrent_reads,
                _between(1, 1000),
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
            batches_in_flight=_read(
                env, "MESSAGING_BATCHES_IN_FLIGHT", int, d.batches_in_flight, _between(1, 16)
            ),
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
            heartbeat_secs=_read(
                env, "MESSAGING_HEARTBEAT_SECS", float, d.heartbeat_secs, _between(0.05, 600)
            ),
            max_streams=_read(
                env, "MESSAGING_MAX_STREAMS", int, d.max_streams, _between(1, 100_000)
            ),
            stream_buffer_events=_read(
                env,
                "MESSAGING_STREAM_BUFFER_EVENTS",
                int,
                d.stream_buffer_events,
                _between(10, 1_000_000),
            ),
            stream_heartbeat_secs=_read(
                env,
                "MESSAGING_STREAM_HEARTBEAT_SECS",
                float,
                d.stream_heartbeat_secs,
                _between(0.01, 3600),
            ),
            stream_retention_secs=_read(
                env,
                "MESSAGING_STREAM_RETENTION_SECS",
                float,
                d.stream_retention_secs,
                _between(1, 365 * 86_400),
            ),
            event_retention_secs=_read(
                env,
                "MESSAGING_EVENT_RETENTION_SECS",
                float,
                d.event_retention_secs,
                _between(0, 100 * 365 * 86_400),
            ),
            idempotency_key_retention_secs=_read(
                env,
                "MESSAGING_IDEMPOTENCY_KEY_RETENTION_SECS",
                float,
                d.idempotency_key_retention_secs,
                _between(0, 100 * 365 * 86_400),
            ),
            prune_batch_rows=_read(
                env, "MESSAGING_PRUNE_BATCH_ROWS", int, d.prune_batch_rows, _between(1, 100_000)
            ),
            prune_pause_ms=_read(
                env, "MESSAGING_PRUNE_PAUSE_MS", int, d.prune_pause_ms, _between(0, 60_000)
            ),
            sms_provider_url=_read(
                env, "MESSAGING_SMS_PROVIDER_URL", _url, f"{own_url}/mock/sms", _nonempty
            ),
            email_provider_url=_read(
                env, "MESSAGING_EMAIL_PROVIDER_URL", _url, f"{own_url}/mock/email", _nonempty
            ),
            send_concurrency=_read(
                env, "MESSAGING_SEND_CONCURRENCY", int, d.send_concurrency, _between(1, 1000)
            ),
            provider_timeout_ms=_read(
                env,
                "MESSAGING_PROVIDER_TIMEOUT_MS",
                int,
                d.provider_timeout_ms,
                _between(10, 600_000),
            ),
            mock_providers=_read(env, "MESSAGING_MOCK_PROVIDERS", _bool, embedded),
            mock_webhook_url=_read(env, "MESSAGING_MOCK_WEBHOOK_URL", _url, own_url, _nonempty),
            mock_faults=_read(env, "MESSAGING_MOCK_FAULTS", _faults, d.mock_faults),
            mock_seed=_read(env, "MESSAGING_MOCK_SEED", int, d.mock_seed),
            mock_retry_after_secs=_read(
                env,
                "MESSAGING_MOCK_RETRY_AFTER_SECS",
                int,
                d.mock_retry_after_secs,
                _between(0, 86_400),
            ),
            mock_hang_secs=_read(
                env, "MESSAGING_MOCK_HANG_SECS", float, d.mock_hang_secs, _between(0, 3600)
            ),
            sms_webhook_secrets=_secrets(env, WEBHOOK_SECRETS_VARIABLES["sms"]),
            email_webhook_secrets=_secrets(env, WEBHOOK_SECRETS_VARIABLES["email"]),
            embedded_data_dir=_read(
                env, "MESSAGING_EMBEDDED_DATA_DIR", str, d.embedded_data_dir, _nonempty
            ),
            log_level=_read(env, "LOG_LEVEL", str.upper, d.log_level, _one_of(_LEVELS)),
            log_format=_read(
                env,
                "LOG_FORMAT",
                str.lower,
                "text" if terminal else d.log_format,
                _one_of(("json", "text")),
            ),
            access_log=_read(
                env, "MESSAGING_ACCESS_LOG", str.lower, d.access_log, _one_of(("summary", "all"))
            ),
            api_auth=_read(
                env,
                "MESSAGING_API_AUTH",
                str.lower,
                "none" if embedded else "keys",
                _one_of(API_AUTH_MODES),
            ),
        )

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def webhook_secrets(self, channel: str) -> tuple[bytes, ...]:
        """The keys a channel's webhooks must be signed with (none: unsigned)."""
        return self.sms_webhook_secrets if channel == "sms" else self.email_webhook_secrets


# Where each channel's webhook secrets come from (the start-up warning names them).
WEBHOOK_SECRETS_VARIABLES = {
    "sms": "MESSAGING_SMS_WEBHOOK_SECRETS",
    "email": "MESSAGING_EMAIL_WEBHOOK_SECRETS",
}


_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
API_AUTH_MODES = ("keys", "none")


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


def _secrets(env: Mapping[str, str], name: str) -> tuple[bytes, ...]:
    """A comma-separated list of whsec_ secrets, decoded; empty items are
    skipped. Unlike _read, an error names the variable and the item's position
    but never repeats the value: it is a secret."""
    items = [item.strip() for item in env.get(name, "").split(",")]
    keys = []
    for position, item in enumerate((i for i in items if i), start=1):
        try:
            key = decode_secret(item)
        except ValueError as exc:
            raise ConfigError(f"{name}: secret number {position} {exc}") from None
        if key not in keys:
            keys.append(key)
    return tuple(keys)


def _kind(parse: Callable[[str], object]) -> str:
    return {
        int: "integer",
        float: "number",
        _bool: "boolean (true/false)",
        _url: "http(s) URL",
        _pg_url: "postgresql:// URL",
        _faults: "fault list (e.g. 429=0.1,500=0.05,400=0,hang=0.01, rates adding up to 1 at most)",
    }.get(parse, "value")


def _bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


def _url(raw: str) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(raw)
    return raw.rstrip("/")


def _pg_url(raw: str) -> str | None:
    """A PostgreSQL URL, or None for an empty value (the default)."""
    if not raw:
        return None
    if urlsplit(raw).scheme not in ("postgres", "postgresql"):
        raise ValueError(raw)
    return raw


MOCK_FAULTS = ("429", "500", "400", "hang")


def _faults(raw: str) -> tuple[tuple[str, float], ...]:
    pairs: dict[str, float] = {}
    for item in raw.split(","):
        fault, sep, rate = item.strip().partition("=")
        if not sep or fault not in MOCK_FAULTS or fault in pairs:
            raise ValueError(raw)
        pairs[fault] = float(rate)
        if not 0 <= pairs[fault] <= 1:
            raise ValueError(raw)
    if sum(pairs.values()) > 1:
        raise ValueError(raw)
    return tuple(pairs.items())


def _reachable(host: str) -> str:
    """An address to reach a server listening on host from this machine."""
    if host in ("0.0.0.0", "::", "*"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


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
