"""Issue 10's baseline (a), the framework's ceiling: a bare aiohttp + uvloop
handler that parses the JSON with `request.json()` and answers 202 with
`json_response`, with no validation, no database, no middleware and no logging.
(bench/baseline_server.py, issue 5's ceiling, also runs the service's validation.)

    python -m bench.bare_server PORT
"""

from __future__ import annotations

import sys

from aiohttp import web

from bench.baseline_server import serve


async def sms_webhook(request: web.Request) -> web.Response:
    await request.json()
    return web.json_response({"id": 1, "status": "accepted"}, status=202)


if __name__ == "__main__":
    serve(sms_webhook, int(sys.argv[1]))
