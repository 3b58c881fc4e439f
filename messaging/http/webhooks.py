"""Provider webhooks: validate, store durably (group commit), answer 202.

POST /api/webhooks/sms    inbound SMS and MMS from the SMS provider
POST /api/webhooks/email  inbound email from the email provider

202 means the event's row is committed. A provider's retry (same channel and
provider id) answers 202 again with the same id and stores nothing new.

Where the channel has secrets (MESSAGING_{SMS,EMAIL}_WEBHOOK_SECRETS), the
Standard Webhooks signature (signatures.py) is checked first: its headers before
the body is read, then the bytes as sent before they are decoded or parsed. A
request that fails answers 401 and costs no database work. The webhook-id is
only signed content: events stay deduplicated on channel and provider id.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from messaging.http.body import expect_handler, json_text_of, read_json_text, receive_body
from messaging.http.keys import EVENT_WRITER, METRICS, WEBHOOK_VERIFIERS
from messaging.http.problems import outcome_of
from messaging.http.requests import parse_email_webhook, parse_sms_webhook
from messaging.http.responses import json_response
from messaging.models import InboundEvent

Parser = Callable[[dict[str, Any], str], InboundEvent]


async def sms_webhook(request: web.Request) -> web.Response:
    return await _ingest(request, "sms", parse_sms_webhook)


async def email_webhook(request: web.Request) -> web.Response:
    return await _ingest(request, "email", parse_email_webhook)


async def _ingest(request: web.Request, channel: str, parse: Parser) -> web.Response:
    started = time.perf_counter()
    metrics = request.app[METRICS]
    outcome = "error"
    try:
        verifier = request.app[WEBHOOK_VERIFIERS].get(channel)
        if verifier is None:
            # The body is stored as it came: parsed and checked, not serialised again.
            event = parse(*await read_json_text(request))
        else:
            signed = verifier.check_headers(request.headers, time.time())
            raw = await receive_body(request)
            verifier.check_body(signed, raw)
            event = parse(*json_text_of(request, raw))
        stored = await request.app[EVENT_WRITER].store(event)
        outcome = "accepted" if stored.created else "duplicate"
    except BaseException as exc:
        outcome = outcome_of(exc)
        raise
    finally:
        metrics.webhook(channel, outcome, time.perf_counter() - started)
    return json_response(
        {
            "id": stored.id,
            "status": "accepted",
            "duplicate": not stored.created,
            "channel": event.channel,
            "provider_message_id": event.provider_message_id,
        },
        status=202,
    )


def routes() -> list[web.RouteDef]:
    return [
        web.post("/api/webhooks/sms", sms_webhook, expect_handler=expect_handler),
        web.post("/api/webhooks/email", email_webhook, expect_handler=expect_handler),
    ]
