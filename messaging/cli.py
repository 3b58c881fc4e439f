"""The entry point: `messaging serve | migrate | ...`.

The only place that reads the environment (into Settings), configures logging,
and decides which database to use: DATABASE_URL when set, otherwise an embedded
PostgreSQL whose data is kept in MESSAGING_EMBEDDED_DATA_DIR.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from messaging import logs
from messaging.config import ConfigError, Settings
from messaging.migrate import MigrationError, migrate

log = logging.getLogger("messaging")


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        print(f"messaging: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    logs.configure(settings.log_level, settings.log_format)
    try:
        args.run(settings, args)
    except MigrationError as exc:
        print(f"messaging: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        pass


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="messaging", description=__doc__)
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="serve the HTTP API (and the worker)")
    serve.add_argument("--migrate", action="store_true", help="apply migrations and triggers first")
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

    mig = sub.add_parser("migrate", help="apply db/migrations (dbmate), then triggers/")
    mig.set_defaults(run=_migrate)
    return parser


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


def _migrate(settings: Settings, args: argparse.Namespace) -> None:
    with _database(settings) as resolved:
        assert resolved.database_url is not None
        for line in asyncio.run(migrate(resolved.database_url)):
            print(line)


def _serve(settings: Settings, args: argparse.Namespace) -> None:
    from aiohttp import web

    from messaging.app import init_app

    _use_uvloop()
    with _database(settings) as resolved:
        assert resolved.database_url is not None
        if args.migrate or not settings.database_url:
            for line in asyncio.run(migrate(resolved.database_url)):
                log.info(line, extra={"action": "migrate"})
        web.run_app(
            init_app(resolved),
            host=resolved.host,
            port=resolved.port,
            access_log=None,
            print=lambda msg: log.info(msg.strip(), extra={"action": "listening"}),
        )


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


def _use_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
