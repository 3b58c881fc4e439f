"""The signed requests of the ingest benchmark (bench/signed.py, and the
aiohttp stand-in's signing) are what the service takes: each verifies with the
standardwebhooks package, ids and bodies distinct, bodies those of the unsigned
variants."""

from __future__ import annotations

import json
import time
from pathlib import Path

from aiohttp import web
from standardwebhooks.webhooks import Webhook

from bench.loadgen import run_closed
from bench.signed import SECRET, write_requests
from messaging.signatures import Verifier, decode_secret
from tests.support.aliases import ServerFactory


def test_each_signed_request_verifies_and_names_its_own_provider_id(tmp_path: Path) -> None:
    path = tmp_path / "requests.tsv"
    count = write_requests(path, "p", 0.001)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == count > 1
    ids, provider_ids = set(), set()
    for line in lines:
        msg_id, timestamp, signature, body = line.split("\t")
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": timestamp,
            "webhook-signature": signature,
        }
        webhook = Webhook(SECRET).verify(body, headers)
        assert webhook == json.loads(body)
        ids.add(msg_id)
        provider_ids.add(webhook["messaging_provider_id"])
    assert len(ids) == len(provider_ids) == count
    assert "p-1-1" in provider_ids


async def test_the_stand_in_signs_each_request(aiohttp_server: ServerFactory) -> None:
    verifier = Verifier([decode_secret(SECRET)])

    async def check(request: web.Request) -> web.Response:
        signed = verifier.check_headers(request.headers, time.time())
        verifier.check_body(signed, await request.read())
        return web.json_response({"id": 1}, status=202)

    app = web.Application()
    app.router.add_post("/hook", check)
    server = await aiohttp_server(app)
    summary = await run_closed(str(server.make_url("/hook")), 2, 0.2, "t", SECRET)
    assert summary["requests"] > 0
    assert summary["status_errors"] == summary["socket_errors"] == 0
