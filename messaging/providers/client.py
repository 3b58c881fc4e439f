"""Sending through the providers: one client per provider, one HTTP session.

A delivery loop calls ``await providers.for_type(message.message_type).send(id, message)``
and gets an outcome, never an exception, for anything the provider or the
network can do:

- ``Accepted(provider_message_id)``: 2xx with the provider's id of the message;
- ``ProviderRetryLater(reason, not_before)``: 429, 5xx, 408/409/425, a timeout, a
  refused or broken connection, a 2xx without an id. ``not_before`` is the
  provider's Retry-After (seconds or HTTP date) when it gave one, else None and
  the caller's backoff decides;
- ``ProviderRejected(reason, status)``: any other 4xx; sending again cannot help.

Every request carries ``Idempotency-Key: msg-<our message id>``, so a retry after
an answer that never arrived (a timeout) cannot make a second delivery: the
provider answers the retry with the id it already gave.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from messaging.config import Settings
from messaging.errors import ProviderRejected, ProviderRetryLater
from messaging.metrics import Metrics
from messaging.models import OutboundMessage
from messaging.timestamps import format_timestamp

log = logging.getLogger(__name__)

IDEMPOTENCY_HEADER = "Idempotency-Key"
# 4xx answers about the request's timing rather than its content: a conflict
# (the same key still in flight at the provider), a timeout, too early.
_RETRYABLE_4XX = frozenset({408, 409, 425, 429})
# A Retry-After further away than this is read as this.
MAX_RETRY_AFTER = timedelta(days=1)
_MAX_PROVIDER_ID_CHARS = 256


@dataclass(frozen=True, slots=True)
class Accepted:
    """The provider took the message and named it provider_message_id."""

    provider_message_id: str


Outcome = Accepted | ProviderRetryLater | ProviderRejected


def idempotency_key(message_id: int) -> str:
    """The key every request for one of our messages carries, however often it is sent."""
    return f"msg-{message_id}"


class ProviderClient:
    """One provider's send API: POST {base_url}/messages, JSON in and out; the
    provider names the message in the response field id_field."""

    def __init__(
        self,
        name: str,
        base_url: str,
        id_field: str,
        session: aiohttp.ClientSession,
        metrics: Metrics,
    ) -> None:
        self.name = name
        self.url = f"{base_url}/messages"
        self._id_field = id_field
        self._session = session
        self._metrics = metrics

    async def send(self, message_id: int, message: OutboundMessage) -> Outcome:
        """Ask the provider to deliver our message message_id once; the outcome says
        whether it took it, may take it later, or never will."""
        started = time.perf_counter()
        outcome = await self._send(message_id, message)
        self._metrics.provider_call(
            self.name, _outcome_label(outcome), time.perf_counter() - started
        )
        log.info(
            "provider answered",
            extra={
                "action": "provider_send",
                "provider": self.name,
                "message_id": message_id,
                "outcome": type(outcome).__name__,
                "detail": getattr(outcome, "provider_message_id", None) or str(outcome),
            },
        )
        return outcome

    async def _send(self, message_id: int, message: OutboundMessage) -> Outcome:
        try:
            async with self._session.post(
                self.url,
                json=self._payload(message),
                headers={IDEMPOTENCY_HEADER: idempotency_key(message_id)},
                allow_redirects=False,
            ) as response:
                if 200 <= response.status < 300:
                    return self._accepted(await response.read(), response.status)
                return _refusal(response.status, response.headers.get("Retry-After"))
        except TimeoutError:
            return ProviderRetryLater(f"{self.name} provider did not answer in time")
        except aiohttp.ClientError as exc:
            return ProviderRetryLater(f"{self.name} provider unreachable: {type(exc).__name__}")

    def _payload(self, message: OutboundMessage) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "from": message.from_address,
            "to": message.to_address,
            "body": message.body,
            "attachments": list(message.attachments) or None,
            "timestamp": format_timestamp(message.sent_at),
        }
        if message.channel == "sms":
            payload["type"] = message.message_type
        return payload

    def _accepted(self, raw: bytes, status: int) -> Outcome:
        # Without the provider's id we cannot record the delivery; asking again
        # with the same idempotency key is safe and gets the id.
        try:
            provider_id = _json_object(raw).get(self._id_field)
        except (ValueError, RecursionError):
            provider_id = None
        if (
            not isinstance(provider_id, str | int)
            or not 0 < len(str(provider_id)) <= _MAX_PROVIDER_ID_CHARS
        ):
            return ProviderRetryLater(f"{self.name} provider answered {status} without an id")
        return Accepted(str(provider_id))


class Providers:
    """The client of each provider, chosen by message type."""

    def __init__(self, sms: ProviderClient, email: ProviderClient) -> None:
        self.sms = sms
        self.email = email

    def for_type(self, message_type: str) -> ProviderClient:
        """SMS and MMS go through the SMS provider, email through the email provider."""
        return self.email if message_type == "email" else self.sms


@asynccontextmanager
async def open_providers(settings: Settings, metrics: Metrics) -> AsyncIterator[Providers]:
    """The provider clients over one shared session, closed on exit."""
    total = settings.provider_timeout_ms / 1000
    timeout = aiohttp.ClientTimeout(total=total, connect=min(total, 2.0))
    async with aiohttp.ClientSession(timeout=timeout, raise_for_status=False) as session:
        yield Providers(
            sms=ProviderClient(
                "sms", settings.sms_provider_url, "messaging_provider_id", session, metrics
            ),
            email=ProviderClient(
                "email", settings.email_provider_url, "xillio_id", session, metrics
            ),
        )


def retry_after(value: str | None, now: datetime) -> datetime | None:
    """The time a Retry-After header (delay in seconds, or an HTTP date) names, or
    None when it is missing or unreadable. Never earlier than now."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return now + min(timedelta(seconds=int(value[:9])), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT
        when = when.replace(tzinfo=UTC)
    return min(max(when, now), now + MAX_RETRY_AFTER)


def _refusal(status: int, retry_after_header: str | None) -> Outcome:
    if status >= 500 or status in _RETRYABLE_4XX:
        return ProviderRetryLater(
            f"provider answered {status}", retry_after(retry_after_header, datetime.now(UTC))
        )
    if 400 <= status < 500:
        return ProviderRejected(f"provider refused the message with {status}", status)
    # 1xx/3xx: a redirect means the configured URL is wrong, which an operator
    # can fix; the message itself is not at fault.
    return ProviderRetryLater(f"provider answered {status}")


def _json_object(raw: bytes) -> dict[str, Any]:
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _outcome_label(outcome: Outcome) -> str:
    if isinstance(outcome, Accepted):
        return "accepted"
    return "retry" if isinstance(outcome, ProviderRetryLater) else "rejected"
