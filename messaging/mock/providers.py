"""The mock providers: real HTTP endpoints that stand in for the SMS and the email
provider, with failures on demand.

One implementation, served two ways: under /mock by `messaging serve` (so that a
fresh `make run` delivers end to end with the default provider URLs), and alone
by `messaging mock-providers` (so that fault and load runs keep the provider out
of the service's process and event loop). The routes, with provider sms or email:

POST   /mock/{provider}/messages    the provider's send API
GET    /mock/{provider}/deliveries  what it accepted and how it answered (and when)
DELETE /mock/{provider}/deliveries  forget both
GET    /mock/{provider}/config      how it answers now
PATCH  /mock/{provider}/config      change that (given fields only); restarts the draws
POST   /mock/{provider}/inbound     play the provider sending us a message: it calls
                                    our webhook the way the real provider would,
                                    signed (Standard Webhooks) with the first of the
                                    channel's MESSAGING_*_WEBHOOK_SECRETS when set

How a send is answered:

1. A request whose Idempotency-Key was already accepted answers 200 with the
   same provider id and counts no second delivery. That check comes first, as
   at a real provider, so a retry is never refused for a message already taken.
2. Otherwise the next step of the scripted sequence, if any is left, decides;
   else a draw from a seeded random generator against the configured rates:
   '429' (with Retry-After), '500', '400', 'hang', or 'ok' for the rest.
3. 'ok' accepts: a new provider id, one delivery counted. 'hang' also accepts
   and counts, then holds the answer back for hang_secs: the provider took the
   message but the client never heard, which is what idempotency keys are for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import uuid
from collections import Counter, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http import HTTPStatus
from typing import Any

import aiohttp
from aiohttp import web

from messaging.config import MOCK_FAULTS, Settings
from messaging.errors import FieldError, InvalidRequest
from messaging.jsontext import MAX_LIST_ITEMS, parse_json
from messaging.signatures import signature_headers
from messaging.timestamps import format_timestamp

FAULTS = (*MOCK_FAULTS, "ok")
MAX_SCRIPT = 10_000
# Requests remembered in the log, newest last.
MAX_LOG = 1000
MAX_HANG_SECS = 3600.0
# How a real provider retries a webhook our service did not take.
WEBHOOK_ATTEMPTS = 3
WEBHOOK_RETRY_DELAY_S = 0.2


@dataclass
class Delivery:
    provider_message_id: str
    idempotency_key: str | None
    payload: dict[str, Any]
    accepted_at: datetime


@dataclass
class MockConfig:
    rates: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    retry_after_secs: int | None = 1
    # Retry-After as an HTTP date instead of seconds.
    retry_after_date: bool = False
    hang_secs: float = 30.0
    script: list[str] = field(default_factory=list)


class MockProvider:
    """One mock provider's state: its configuration, draws, deliveries and counts."""

    def __init__(self, name: str, id_field: str, config: MockConfig) -> None:
        self.name = name
        self.id_field = id_field
        self.config = config
        self.deliveries: dict[str, Delivery] = {}  # by provider id, in acceptance order
        self._by_key: dict[str, Delivery] = {}
        self.requests = 0
        self.answers: Counter[str] = Counter()
        self.requests_by_key: Counter[str] = Counter()
        # When each request came and how it was answered, for tests that check
        # the timing of retries.
        self.log: deque[dict[str, Any]] = deque(maxlen=MAX_LOG)
        self._rng = random.Random(config.seed)
        self._script: deque[str] = deque(config.script)

    def configure(self, config: MockConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        self._script = deque(config.script)

    def reset(self) -> None:
        self.deliveries.clear()
        self._by_key.clear()
        self.requests = 0
        self.answers.clear()
        self.requests_by_key.clear()
        self.log.clear()

    def note(self, key: str | None, answer: str) -> None:
        self.log.append(
            {"at": format_timestamp(datetime.now(UTC)), "idempotency_key": key, "answer": answer}
        )

    def next_answer(self, key: str | None) -> tuple[str, Delivery | None]:
        """('repeat', the earlier delivery) for a key already accepted, else the
        fault or 'ok' this request gets."""
        self.requests += 1
        if key is not None:
            self.requests_by_key[key] += 1
            if key in self._by_key:
                return "repeat", self._by_key[key]
        if self._script:
            return self._script.popleft(), None
        draw = self._rng.random()
        for fault in MOCK_FAULTS:
            draw -= self.config.rates.get(fault, 0.0)
            if draw < 0:
                return fault, None
        return "ok", None

    def accept(self, key: str | None, payload: dict[str, Any]) -> Delivery:
        delivery = Delivery(
            provider_message_id=f"{self.name}-{uuid.uuid4().hex}",
            idempotency_key=key,
            payload=payload,
            accepted_at=datetime.now(UTC),
        )
        self.deliveries[delivery.provider_message_id] = delivery
        if key is not None:
            self._by_key[key] = delivery
        return delivery

    def snapshot(self) -> dict[str, Any]:
        return {
            "provider": self.name,
            "accepted": len(self.deliveries),
            "requests": self.requests,
            "answers": dict(self.answers),
            "deliveries": [
                {
                    "provider_message_id": d.provider_message_id,
                    "idempotency_key": d.idempotency_key,
                    "requests": self.requests_by_key[d.idempotency_key] if d.idempotency_key else 1,
                    "accepted_at": format_timestamp(d.accepted_at),
                    "payload": d.payload,
                }
                for d in self.deliveries.values()
            ],
            "log": list(self.log),
        }

    def config_view(self) -> dict[str, Any]:
        c = self.config
        return {
            "rates": {fault: c.rates.get(fault, 0.0) for fault in MOCK_FAULTS},
            "seed": c.seed,
            "retry_after_secs": c.retry_after_secs,
            "retry_after_date": c.retry_after_date,
            "hang_secs": c.hang_secs,
            "script": list(self._script),
        }


MOCKS = web.AppKey("mock_providers", dict[str, MockProvider])
_SETTINGS = web.AppKey("mock_settings", Settings)
_SESSION = web.AppKey("mock_session", aiohttp.ClientSession)
_CLOSING = web.AppKey("mock_closing", asyncio.Event)


def mock_providers(settings: Settings) -> web.Application:
    """The mock providers as an application, to be mounted under /mock."""
    app = web.Application()
    seed = settings.mock_seed if settings.mock_seed is not None else random.randrange(2**32)
    initial = MockConfig(
        rates=dict(settings.mock_faults),
        seed=seed,
        retry_after_secs=settings.mock_retry_after_secs,
        hang_secs=settings.mock_hang_secs,
    )
    app[MOCKS] = {
        "sms": MockProvider("sms", "messaging_provider_id", initial),
        "email": MockProvider("email", "xillio_id", MockConfig(**vars(initial))),
    }
    app[_SETTINGS] = settings
    app[_CLOSING] = asyncio.Event()
    app.cleanup_ctx.append(_webhook_session)
    app.on_shutdown.append(_release_hangs)
    provider = "{provider:sms|email}"
    app.add_routes(
        [
            web.post(f"/{provider}/messages", send),
            web.get(f"/{provider}/deliveries", deliveries),
            web.delete(f"/{provider}/deliveries", forget),
            web.get(f"/{provider}/config", get_config),
            web.patch(f"/{provider}/config", patch_config),
            web.post(f"/{provider}/inbound", inbound),
        ]
    )
    return app


def _mock(request: web.Request) -> MockProvider:
    return request.app[MOCKS][request.match_info["provider"]]


async def send(request: web.Request) -> web.Response:
    mock = _mock(request)
    key = request.headers.get("Idempotency-Key") or None
    answer, earlier = mock.next_answer(key)
    if answer == "repeat":
        assert earlier is not None
        mock.note(key, answer)
        mock.answers["200"] += 1
        return web.json_response({mock.id_field: earlier.provider_message_id, "repeat": True})
    if answer in ("429", "500", "400"):
        mock.note(key, answer)
        mock.answers[answer] += 1
        return _fault(request, mock, int(answer))
    payload = await _message_payload(request)
    if payload is None:
        mock.note(key, "invalid")
        mock.answers["400"] += 1
        return _problem(request, 400, "The body must be a JSON object with from and to.")
    mock.note(key, answer)
    delivery = mock.accept(key, payload)
    if answer == "hang":
        mock.answers["hang"] += 1
        closing = request.app[_CLOSING]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closing.wait(), mock.config.hang_secs)
    mock.answers["200"] += 1
    return web.json_response({mock.id_field: delivery.provider_message_id, "repeat": False})


def _fault(request: web.Request, mock: MockProvider, status: int) -> web.Response:
    headers = {}
    if status == 429 and mock.config.retry_after_secs is not None:
        seconds = mock.config.retry_after_secs
        headers["Retry-After"] = (
            # An HTTP date has whole seconds: one more, so the wait is never shorter.
            format_datetime(
                datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=seconds + 1),
                usegmt=True,
            )
            if mock.config.retry_after_date
            else str(seconds)
        )
    detail = f"The mock {mock.name} provider answers {status}, as configured."
    return _problem(request, status, detail, headers)


def _problem(
    request: web.Request, status: int, detail: str, headers: dict[str, str] | None = None
) -> web.Response:
    """The mock's own refusals, in the RFC 9457 shape a provider might use."""
    title = HTTPStatus(status).phrase
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return web.json_response(
        body, status=status, headers=headers, content_type="application/problem+json"
    )


async def _json_object(request: web.Request, max_items: int = MAX_LIST_ITEMS) -> dict[str, Any]:
    """The request body as a JSON object, or InvalidRequest (400). The body comes
    as sent (the apps leave Content-Encoding alone): the mock takes plain JSON."""
    return parse_json(await request.read(), max_items=max_items)


async def _message_payload(request: web.Request) -> dict[str, Any] | None:
    try:
        payload = await _json_object(request)
    except InvalidRequest:
        return None
    if not isinstance(payload.get("from"), str) or not isinstance(payload.get("to"), str):
        return None
    return payload


async def deliveries(request: web.Request) -> web.Response:
    return web.json_response(_mock(request).snapshot())


async def forget(request: web.Request) -> web.Response:
    _mock(request).reset()
    return web.json_response(_mock(request).snapshot())


async def get_config(request: web.Request) -> web.Response:
    return web.json_response(_mock(request).config_view())


async def patch_config(request: web.Request) -> web.Response:
    mock = _mock(request)
    changes = await _json_object(request, MAX_SCRIPT)
    mock.configure(_changed_config(mock, changes))
    return web.json_response(mock.config_view())


def _changed_config(mock: MockProvider, changes: dict[str, Any]) -> MockConfig:
    """The mock's configuration with the given fields replaced; InvalidRequest
    naming every bad field."""
    current = mock.config
    errors: list[FieldError] = []
    unknown = set(changes) - {
        "rates",
        "seed",
        "retry_after_secs",
        "retry_after_date",
        "hang_secs",
        "script",
    }
    errors += [FieldError(f"/{name}", "is not a setting of the mock") for name in sorted(unknown)]
    rates = changes.get("rates", current.rates)
    if not isinstance(rates, dict) or not all(
        fault in MOCK_FAULTS and _number(rate, 0, 1) for fault, rate in rates.items()
    ):
        errors.append(FieldError("/rates", f"must map {', '.join(MOCK_FAULTS)} to rates 0..1"))
    elif sum(rates.values()) > 1:
        errors.append(FieldError("/rates", "must add up to 1 at most"))
    seed = changes.get("seed", current.seed)
    if not _integer(seed, 0, 2**63):
        errors.append(FieldError("/seed", "must be a non-negative integer"))
    retry_after = changes.get("retry_after_secs", current.retry_after_secs)
    if retry_after is not None and not _integer(retry_after, 0, 86_400):
        errors.append(FieldError("/retry_after_secs", "must be null or 0..86400 seconds"))
    retry_after_date = changes.get("retry_after_date", current.retry_after_date)
    if not isinstance(retry_after_date, bool):
        errors.append(FieldError("/retry_after_date", "must be true or false"))
    hang = changes.get("hang_secs", current.hang_secs)
    if not _number(hang, 0, MAX_HANG_SECS):
        errors.append(FieldError("/hang_secs", f"must be 0..{MAX_HANG_SECS:g} seconds"))
    script = changes.get("script", list(mock.config_view()["script"]))
    if (
        not isinstance(script, list)
        or len(script) > MAX_SCRIPT
        or not all(step in FAULTS for step in script)
    ):
        errors.append(
            FieldError("/script", f"must list at most {MAX_SCRIPT} of: {', '.join(FAULTS)}")
        )
    if errors:
        raise InvalidRequest("The mock's configuration is not valid.", errors)
    return MockConfig(
        rates={fault: float(rate) for fault, rate in rates.items()},
        seed=seed,
        retry_after_secs=retry_after,
        retry_after_date=retry_after_date,
        hang_secs=float(hang),
        script=list(script),
    )


def _number(value: Any, low: float, high: float) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and low <= value <= high


def _integer(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


async def inbound(request: web.Request) -> web.Response:
    """Send our webhook what this provider would send for a message it received:
    the body given, completed with a provider id and a timestamp when missing."""
    mock = _mock(request)
    message = await _json_object(request)
    webhook = {
        "timestamp": format_timestamp(datetime.now(UTC).replace(microsecond=0)),
        **message,
    }
    webhook.setdefault(mock.id_field, f"{mock.name}-in-{uuid.uuid4().hex}")
    if mock.name == "sms":
        webhook.setdefault("type", "sms")
    settings = request.app[_SETTINGS]
    url = f"{settings.mock_webhook_url}/api/webhooks/{mock.name}"
    # A provider holds one secret: the first listed is the current one.
    keys = settings.webhook_secrets(mock.name)[:1]
    result = await _call_webhook(request.app[_SESSION], url, webhook, keys)
    return web.json_response(
        {"provider_message_id": webhook[mock.id_field], "webhook": {"url": url, **result}}
    )


async def _call_webhook(
    session: aiohttp.ClientSession, url: str, webhook: dict[str, Any], keys: tuple[bytes, ...]
) -> dict[str, Any]:
    """POST the webhook, retrying (as providers do) while our answer is 429, 5xx or
    none; the last answer, or the last error. With keys, each attempt is signed
    (Standard Webhooks): one webhook-id for all of them, the timestamp of each."""
    payload = json.dumps(webhook).encode()
    msg_id = f"msg_{uuid.uuid4().hex}"
    result: dict[str, Any] = {}
    for attempt in range(1, WEBHOOK_ATTEMPTS + 1):
        if attempt > 1:
            await asyncio.sleep(WEBHOOK_RETRY_DELAY_S * (attempt - 1))
        headers = {"Content-Type": "application/json"}
        if keys:
            headers |= signature_headers(keys, msg_id, int(time.time()), payload)
        try:
            async with session.post(url, data=payload, headers=headers) as response:
                text = await response.text()
                try:
                    body: Any = json.loads(text)
                except ValueError:
                    body = text
                result = {"status": response.status, "body": body, "attempts": attempt}
                if response.status != 429 and response.status < 500:
                    return result
        except (TimeoutError, aiohttp.ClientError) as exc:
            result = {"status": None, "error": f"{type(exc).__name__}: {exc}", "attempts": attempt}
    return result


async def _webhook_session(app: web.Application) -> AsyncIterator[None]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        app[_SESSION] = session
        yield


async def _release_hangs(app: web.Application) -> None:
    # Held answers end at shutdown instead of holding it up for hang_secs.
    app[_CLOSING].set()
