"""Sends: validate, store durably, answer 202. Delivery to the provider happens
later, in the worker (worker/delivery.py), never inside the request.

POST /api/messages/sms    an outbound SMS or MMS
POST /api/messages/email  an outbound email

202 means the message is committed, status queued, in its conversation. With an
Idempotency-Key, a repeat of the same request answers the same 202 (with
Idempotent-Replayed: true) and stores nothing; the key with another request
answers 422.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from messaging.http.body import expect_handler, read_json
from messaging.http.keys import METRICS, POOL
from messaging.http.problems import outcome_of
from messaging.http.requests import parse_email_send, parse_idempotency_key, parse_sms_send
from messaging.http.responses import json_response
from messaging.models import OutboundMessage
from messaging.outbox import queue_send

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"

Parser = Callable[[dict[str, Any]], OutboundMessage]


async def sms_send(request: web.Request) -> web.Response:
    return await _send(request, "sms", parse_sms_send)


async def email_send(request: web.Request) -> web.Response:
    return await _send(request, "email", parse_email_send)


async def _send(request: web.Request, channel: str, parse: Parser) -> web.Response:
    started = time.perf_counter()
    outcome = "error"
    try:
        key = parse_idempotency_key(request.headers.getall(IDEMPOTENCY_HEADER, []))
        message = parse(await read_json(request))
        queued = await queue_send(request.app[POOL], message, key)
        outcome = "queued" if queued.created else "replayed"
    except BaseException as exc:
        outcome = outcome_of(exc)
        raise
    finally:
        request.app[METRICS].send_request(channel, outcome, time.perf_counter() - started)
    # A replay answers what the first request was answered, not the message's
    # status now: the body of a 202 describes the acceptance.
    return json_response(
        {"id": queued.message_id, "status": "queued", "conversation_id": queued.conversation_id},
        status=202,
        headers=None if queued.created else {REPLAYED_HEADER: "true"},
    )


def routes() -> list[web.RouteDef]:
    return [
        web.post("/api/messages/sms", sms_send, expect_handler=expect_handler),
        web.post("/api/messages/email", email_send, expect_handler=expect_handler),
    ]
