"""Issue 10's baseline (a), the framework's ceiling: a bare aiohttp + uvloop
handler that parses the JSON with `request.json()` and answers 202 with
`json_response`, with no validation, no database, no middleware and no logging.
(bench/baseline_server.py, issue 5's ceiling, also runs the service's validation.)

    python -m bench.bare_server PORT
"""

from __future__ import annotations

import sys

from aiohttp import web


async def sms_webhook(request: web.Request) -> web.Response:
    await request.json()
    return web.json_response({"id": 1, "status": "accepted"}, status=202)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def main() -> None:
    port = int(sys.argv[1])
    try:
        import uvloop  # the service runs on uvloop too (messaging/cli.py)

        uvloop.install()
    except ImportError:
        pass
    app = web.Application()
    app.add_routes([web.post("/api/webhooks/sms", sms_webhook), web.get("/healthz", healthz)])
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main()
