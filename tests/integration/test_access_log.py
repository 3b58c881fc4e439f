"""The access log: a line for each refused request, a periodic summary of the
rest by route and status (MESSAGING_ACCESS_LOG=summary, the default), or a line
for every request (all)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from messaging.app import init_app
from messaging.config import Settings
from messaging.http.access_log import ACCESS_LOG
from tests.support.aliases import Client
from tests.support.payloads import SMS_WEBHOOK


def lines(caplog: pytest.LogCaptureFixture, action: str) -> list[Any]:
    return [r for r in caplog.records if getattr(r, "action", None) == action]


async def test_by_default_answered_requests_are_summarised_and_refused_ones_logged(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="messaging.http")
    for i in range(5):
        body = {**SMS_WEBHOOK, "messaging_provider_id": f"summary-{i}"}
        assert (await client.post("/api/webhooks/sms", json=body)).status == 202
    for raw_id in ("1", "2"):
        assert (await client.get(f"/api/conversations/{raw_id}/messages")).status == 404
    assert (await client.post("/api/webhooks/sms", json={"type": "sms"})).status == 400
    assert lines(caplog, "http_request") and all(
        r.status >= 400 for r in lines(caplog, "http_request")
    )
    assert len(lines(caplog, "http_request")) == 3
    client.app[ACCESS_LOG].flush()
    [summary] = [r for r in lines(caplog, "http_summary") if r.route == "/api/webhooks/sms"]
    assert (summary.method, summary.status, summary.requests) == ("POST", 202, 5)
    assert summary.max_duration_ms > 0


async def test_with_all_every_request_has_its_line(
    aiohttp_client: Any, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="messaging.http")
    client = await aiohttp_client(init_app(settings.replace(access_log="all")))
    for i in range(3):
        body = {**SMS_WEBHOOK, "messaging_provider_id": f"all-{i}"}
        assert (await client.post("/api/webhooks/sms", json=body)).status == 202
    requests = lines(caplog, "http_request")
    assert [(r.path, r.status) for r in requests] == [("/api/webhooks/sms", 202)] * 3
    assert all(r.request_id for r in requests)
    client.app[ACCESS_LOG].flush()
    assert lines(caplog, "http_summary") == []
