"""The HTTP ceiling of this machine: a bare aiohttp handler that reads and
validates a webhook exactly as the service does (messaging.payloads) and answers
202, with no database, no middlewares and no logging.

    python -m bench.baseline_server PORT
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Awaitable, Callable

from aiohttp import web

from messaging.http.requests import parse_sms_webhook
from messaging.jsontext import parse_json

_ids = itertools.count(1)
Handler = Callable[[web.Request], Awaitable[web.Response]]


async def sms_webhook(request: web.Request) -> web.Response:
    event = parse_sms_webhook(parse_json(await request.read()))
    return web.json_response(
        {
            "id": next(_ids),
            "status": "accepted",
            "duplicate": False,
            "channel": event.channel,
            "provider_message_id": event.provider_message_id,
        },
        status=202,
    )


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def serve(handler: Handler, port: int) -> None:
    """Serve POST /api/webhooks/sms with handler, and /healthz, on uvloop, with no
    middleware and no logging (this baseline and bench/bare_server.py)."""
    serve_app(web.Application(), handler, port)


def serve_app(app: web.Application, handler: Handler, port: int) -> None:
    """serve() with an app of the caller's (bench/durable_server.py's has a pool)."""
    try:
        import uvloop  # the service runs on uvloop too (messaging/cli.py)

        uvloop.install()
    except ImportError:
        pass
    app.add_routes([web.post("/api/webhooks/sms", handler), web.get("/healthz", healthz)])
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def main() -> None:
    serve(sms_webhook, int(sys.argv[1]))


if __name__ == "__main__":
    main()
