"""The entry point: `messaging serve | worker | migrate | events | replay | prune | keys`.

The only place that reads the environment (into Settings), configures logging,
and decides which database to use: DATABASE_URL when set, otherwise an embedded
PostgreSQL whose data is kept in MESSAGING_EMBEDDED_DATA_DIR.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from messaging import apikeys, logs
from messaging.config import ConfigError, Settings
from messaging.errors import DatabaseFailed, DatabaseUnavailable
from messaging.migrate import MigrationError, migrate
from messaging.models import EVENT_STATUSES

if TYPE_CHECKING:
    import asyncpg

    from messaging.metrics import Metrics
    from messaging.worker.runner import Worker

log = logging.getLogger("messaging")
T = TypeVar("T")


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        # Text for a person at a terminal, JSON for whatever collects the logs
        # elsewhere, unless LOG_FORMAT says which.
        settings = Settings.from_env(os.environ, terminal=sys.stderr.isatty())
    except ConfigError as exc:
        print(f"messaging: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    logs.configure(settings.log_level, settings.log_format)
    try:
        args.run(settings, args)
    except (MigrationError, DatabaseUnavailable, DatabaseFailed) as exc:
        print(f"messaging: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="messaging", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="serve the HTTP API and run a worker")
    serve.add_argument("--migrate", action="store_true", help="apply migrations and triggers first")
    serve.add_argument("--no-worker", action="store_true", help="serve the API only")
    serve.set_defaults(run=_serve)

    mock = sub.add_parser(
        "mock-providers",
        help="serve the mock SMS and email providers alone (no database)",
        description="The mock providers of `serve`'s /mock, in a process of their own: "
        "point MESSAGING_SMS_PROVIDER_URL and MESSAGING_EMAIL_PROVIDER_URL at "
        "http://HOST:PORT/mock/sms and /mock/email. Inbound traffic goes to "
        "MESSAGING_MOCK_WEBHOOK_URL.",
    )
    mock.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    mock.add_argument("--port", type=int, default=8081, help="default: 8081")
    mock.set_defaults(run=_mock_providers)

    worker = sub.add_parser(
        "worker", help="run a worker alone (any number may run against one database)"
    )
    worker.add_argument(
        "--migrate", action="store_true", help="apply migrations and triggers first"
    )
    worker.set_defaults(run=_worker)

    events = sub.add_parser("events", help="list inbound events in one status")
    events.add_argument("--status", required=True, choices=EVENT_STATUSES)
    events.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    events.set_defaults(run=_events)

    replay = sub.add_parser(
        "replay", help="requeue dead letters (or events waiting for a retry), attempts reset"
    )
    replay.add_argument("ids", nargs="*", type=int, metavar="ID", help="event ids")
    replay.add_argument("--all-dead", action="store_true", help="every dead letter")
    replay.set_defaults(run=_replay)

    prune = sub.add_parser(
        "prune",
        help="delete now what retention no longer keeps, until nothing old is left",
        description="One pass of the worker's retention (processed events, Idempotency-Keys, "
        "the stream's log; MESSAGING_*_RETENTION_SECS), in batches of "
        "MESSAGING_PRUNE_BATCH_ROWS with MESSAGING_PRUNE_PAUSE_MS between them, one batch "
        "at a time with any running worker. Prints what it deleted.",
    )
    prune.set_defaults(run=_prune)

    mig = sub.add_parser("migrate", help="apply the migrations (dbmate), then the trigger files")
    mig.set_defaults(run=_migrate)

    keys = sub.add_parser(
        "keys",
        help="the API's keys: create, list, revoke",
        description="API keys (MESSAGING_API_AUTH=keys): a request names one as "
        "`Authorization: Bearer <key>`. The database keeps a SHA-256 of each key, "
        "never the key; a revocation reaches every running process within 5 s.",
    )
    keys_sub = keys.add_subparsers(required=True, metavar="ACTION")
    create = keys_sub.add_parser(
        "create", help="make a key; prints the key alone on standard output, once"
    )
    create.add_argument("--name", required=True, type=_key_name, help=apikeys.NAME_RULE)
    create.add_argument(
        "--scopes",
        required=True,
        type=_scopes,
        help=f"comma-separated, of {', '.join(apikeys.SCOPES)} (e.g. send,read)",
    )
    create.set_defaults(run=_keys_create)
    listing = keys_sub.add_parser("list", help="name, scopes, created, last used, revoked")
    listing.set_defaults(run=_keys_list)
    revoke = keys_sub.add_parser("revoke", help="revoke a key by name, for good")
    revoke.add_argument("name", metavar="NAME")
    revoke.set_defaults(run=_keys_revoke)
    return parser


def _key_name(raw: str) -> str:
    if not apikeys.NAME.fullmatch(raw):
        raise argparse.ArgumentTypeError(f"{raw!r}: a name is {apikeys.NAME_RULE}")
    return raw


def _scopes(raw: str) -> tuple[str, ...]:
    try:
        return apikeys.parse_scopes(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


@contextmanager
def _database(settings: Settings) -> Iterator[Settings]:
    """Settings whose database_url points at a running server: the configured one,
    or the embedded one, started here and stopped on exit."""
    if settings.database_url:
        yield settings
        return
    from messaging.embedded import embedded_server

    with embedded_server(settings.embedded_data_dir) as url:
        yield settings.replace(database_url=url)


def _migrate_if_asked(settings: Settings, database_url: str, args: argparse.Namespace) -> None:
    """Migrate before serving when --migrate says so, and always on the embedded
    server: a newcomer's `make run` must find its schema in place."""
    if args.migrate or not settings.database_url:
        for line in asyncio.run(migrate(_session_url(settings, database_url))):
            log.info(line, extra={"action": "migrate"})


def _migrate(settings: Settings, args: argparse.Namespace) -> None:
    with _database(settings) as resolved:
        assert resolved.database_url is not None
        for line in asyncio.run(migrate(_session_url(resolved, resolved.database_url))):
            print(line)


def _session_url(settings: Settings, database_url: str) -> str:
    """Where migrations go: the LISTEN connection's address when it has one of
    its own (the primary itself, when DATABASE_URL goes through a transaction
    pooler: migrations take a session's lock and run long statements)."""
    return settings.listen_database_url or database_url


def _serve(settings: Settings, args: argparse.Namespace) -> None:
    from aiohttp import web

    from messaging.app import init_app

    _use_uvloop()
    if settings.api_auth == "none":
        log.warning(
            "MESSAGING_API_AUTH=none: anyone who reaches this service may send messages and "
            "read every conversation; set it to keys (the default with DATABASE_URL) and make "
            "keys with `messaging keys create`",
            extra={"action": "config_warning"},
        )
    with _database(settings) as resolved:
        assert resolved.database_url is not None
        _migrate_if_asked(settings, resolved.database_url, args)
        app = init_app(resolved, worker=not args.no_worker)
        app.on_startup.append(_freeze_heap)
        web.run_app(
            app,
            host=resolved.host,
            port=resolved.port,
            access_log=None,
            print=lambda msg: log.info(msg.strip(), extra={"action": "listening"}),
        )


async def _freeze_heap(app: object) -> None:
    """What the start allocated (modules, pools, routes) leaves the garbage
    collector's reach: its collections under load then walk only what requests
    allocate. Last of the start-up steps, after the app's resources are open."""
    gc.collect()
    gc.freeze()


def _mock_providers(settings: Settings, args: argparse.Namespace) -> None:
    from aiohttp import web

    from messaging.app import init_mock_app

    _use_uvloop()
    web.run_app(
        init_mock_app(settings),
        host=args.host,
        port=args.port,
        access_log=None,
        print=lambda msg: log.info(msg.strip(), extra={"action": "listening"}),
    )


def _worker(settings: Settings, args: argparse.Namespace) -> None:
    _use_uvloop()
    with _database(settings) as resolved:
        assert resolved.database_url is not None
        _migrate_if_asked(settings, resolved.database_url, args)
        asyncio.run(_run_worker(resolved))


async def _run_worker(settings: Settings) -> None:
    """Run a worker until SIGTERM or SIGINT, then stop it cleanly: no new claims,
    the batch in hand and the sends in flight finished, connections closed."""
    from messaging.heartbeat import Heartbeat
    from messaging.metrics import Metrics
    from messaging.providers.client import open_providers
    from messaging.store.db import create_pool
    from messaging.worker.runner import Worker

    assert settings.database_url is not None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    metrics = Metrics()
    pool = await create_pool(settings.database_url, size=settings.pool_size)
    try:
        async with open_providers(settings, metrics) as providers:
            worker = Worker(settings, pool, metrics, providers)
            async with _worker_http(settings, pool, metrics, worker):
                await worker.start()
                # Under the worker's processor id, the id its claims carry; stopped
                # first, so that a stopping worker leaves the operator's view at once.
                heartbeat = Heartbeat(
                    pool,
                    process_id=worker.processor_id,
                    kind="worker",
                    period_s=settings.heartbeat_secs,
                    listener=worker.listener,
                )
                heartbeat.start()
                try:
                    await stop.wait()
                    log.info("stopping", extra={"action": "signal"})
                finally:
                    await heartbeat.stop()
                await worker.stop()
    finally:
        await pool.close()


@asynccontextmanager
async def _worker_http(
    settings: Settings, pool: asyncpg.Pool, metrics: Metrics, worker: Worker
) -> AsyncIterator[None]:
    """A standalone worker's /healthz, /readyz and /metrics on MESSAGING_WORKER_PORT
    (none when it is 0), served for the block: started before the worker, so that a
    port already taken stops the start before anything is claimed, and stopped after
    it, so that a scrape or a probe still answers while the worker drains."""
    if not settings.worker_port:
        yield
        return
    from aiohttp import web

    from messaging.app import init_worker_app

    runner = web.AppRunner(init_worker_app(settings, pool, metrics, worker), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.host, settings.worker_port).start()
        log.info(
            "serving /healthz, /readyz and /metrics on http://%s:%d",
            settings.host,
            settings.worker_port,
            extra={"action": "listening"},
        )
        yield
    finally:
        await runner.cleanup()


def _events(settings: Settings, args: argparse.Namespace) -> None:
    from messaging.store import inbound_events
    from messaging.store.db import direct

    async def run(url: str) -> list[inbound_events.EventSummary]:
        async with direct(url) as conn:
            return await inbound_events.list_events(conn, args.status, args.limit)

    with _database(settings) as resolved:
        assert resolved.database_url is not None
        rows = asyncio.run(run(resolved.database_url))
    if not rows:
        print(f"no events with status {args.status}")
        return
    table = [("ID", "CHANNEL", "PROVIDER ID", "ATTEMPTS", "LAST ERROR")]
    table += [
        (
            str(r.id),
            r.channel,
            r.provider_message_id,
            str(r.attempt_count),
            " ".join((r.last_error or "").split())[:200],
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[4])


def _replay(settings: Settings, args: argparse.Namespace) -> None:
    from messaging.store import inbound_events
    from messaging.store.db import direct

    if bool(args.ids) == bool(args.all_dead):
        print("messaging replay: give event ids or --all-dead (not both)", file=sys.stderr)
        sys.exit(2)

    async def run(url: str) -> list[inbound_events.ReplayResult]:
        async with direct(url) as conn:
            if args.all_dead:
                ids = await inbound_events.replay_dead_letters(conn)
                return [inbound_events.ReplayResult(i, "dead_letter", True) for i in ids]
            return await inbound_events.replay(conn, args.ids)

    with _database(settings) as resolved:
        assert resolved.database_url is not None
        results = asyncio.run(run(resolved.database_url))
    requeued = [r.event_id for r in results if r.requeued]
    print(f"requeued {len(requeued)} event(s)" + (f": {_ids(requeued)}" if requeued else ""))
    refused = [r for r in results if not r.requeued]
    for r in refused:
        print(f"not requeued: {r.event_id} ({r.refusal})")
    if refused:
        sys.exit(1)


def _prune(settings: Settings, args: argparse.Namespace) -> None:
    from messaging.metrics import Metrics
    from messaging.store.db import create_pool
    from messaging.worker.retention import Pruned, Pruner, RetentionPolicy

    async def run(url: str) -> Pruned:
        pool = await create_pool(url, size=2)
        try:
            pruner = Pruner(pool, Metrics(), RetentionPolicy.from_settings(settings))
            return await pruner.prune(wait=True)
        finally:
            await pool.close()

    with _database(settings) as resolved:
        assert resolved.database_url is not None
        started = time.monotonic()
        pruned = asyncio.run(run(resolved.database_url))
    elapsed = time.monotonic() - started
    counts = ", ".join(f"{n} from {table}" for table, n in pruned.deleted.items())
    print(f"pruned {pruned.total} row(s) in {elapsed:.1f} s: {counts or 'retention is off'}")


class _Refused(Exception):
    """A keys command that did nothing, and why (exit code 1)."""


@asynccontextmanager
async def _keys_connection(url: str) -> AsyncIterator[asyncpg.Connection]:
    from messaging.store.db import direct
    from messaging.store.schema_migrations import pending_migrations

    async with direct(url) as conn:
        pending = await pending_migrations(conn)
        if pending:
            raise _Refused(
                f"the database lacks {len(pending)} migration(s) ({', '.join(pending)}): "
                "run `messaging migrate` first"
            )
        yield conn


def _keys_run(settings: Settings, action: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run a keys action on its own connection to the resolved database; a
    refusal is printed on standard error and exits 1."""

    async def run(url: str) -> T:
        async with _keys_connection(url) as conn:
            return await action(conn)

    with _database(settings) as resolved:
        assert resolved.database_url is not None
        try:
            return asyncio.run(run(resolved.database_url))
        except _Refused as exc:
            print(f"messaging keys: {exc}", file=sys.stderr)
            sys.exit(1)


def _keys_create(settings: Settings, args: argparse.Namespace) -> None:
    from messaging.store import api_keys

    key = apikeys.new_key()

    async def create(conn: asyncpg.Connection) -> None:
        if not await api_keys.insert(conn, args.name, args.scopes, apikeys.key_hash(key)):
            raise _Refused(f"a key named {args.name!r} exists already (revoked keys keep theirs)")

    _keys_run(settings, create)
    # The key alone on standard output, for `KEY=$(messaging keys create ...)`;
    # it is shown this once and kept nowhere.
    print(
        f"created API key {args.name!r} with scopes {','.join(args.scopes)}; "
        "it is shown once, below (standard output): keep it now",
        file=sys.stderr,
    )
    print(key, flush=True)


def _keys_list(settings: Settings, args: argparse.Namespace) -> None:
    from messaging.store import api_keys
    from messaging.timestamps import format_timestamp

    rows = _keys_run(settings, api_keys.list_keys)
    if not rows:
        print("no API keys (make one with `messaging keys create`)")
        return

    def when(value: datetime | None) -> str:
        return "-" if value is None else format_timestamp(value.replace(microsecond=0))

    table = [("NAME", "SCOPES", "CREATED", "LAST USED", "REVOKED")]
    table += [
        (r.name, ",".join(r.scopes), when(r.created_at), when(r.last_used_at), when(r.revoked_at))
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        cells = "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
        print(cells, row[4], sep="  ")


def _keys_revoke(settings: Settings, args: argparse.Namespace) -> None:
    from messaging.store import api_keys
    from messaging.timestamps import format_timestamp

    async def revoke(conn: asyncpg.Connection) -> api_keys.Revocation:
        revocation = await api_keys.revoke(conn, args.name)
        if revocation is None:
            raise _Refused(f"there is no key named {args.name!r}")
        return revocation

    revocation = _keys_run(settings, revoke)
    at = format_timestamp(revocation.revoked_at.replace(microsecond=0))
    if revocation.now_revoked:
        print(f"revoked API key {args.name!r} at {at}")
    else:
        print(f"API key {args.name!r} was already revoked, at {at}")


def _ids(ids: list[int]) -> str:
    shown = ", ".join(str(i) for i in ids[:20])
    return shown + (f" ... ({len(ids) - 20} more)" if len(ids) > 20 else "")


def _use_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
