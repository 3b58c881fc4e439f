"""A database error nobody foresaw (here a table gone from under the service;
behind a misconfigured pooler, a prepared statement gone) answers 503 with
Retry-After and problem+json, is logged as an error with its traceback, and is
never a 500."""

from __future__ import annotations

import logging

import asyncpg
import pytest

from tests.support.aliases import Client
from tests.support.payloads import SMS_WEBHOOK


async def test_an_unforeseen_database_error_answers_503_with_retry_after(
    client: Client, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    await db.execute("ALTER TABLE conversations RENAME TO conversations_gone")
    await db.execute("ALTER TABLE inbound_events RENAME TO inbound_events_gone")
    with caplog.at_level(logging.ERROR, logger="messaging.http"):
        for method, path, body in (
            ("GET", "/api/conversations", None),
            ("POST", "/api/webhooks/sms", SMS_WEBHOOK),
        ):
            response = await client.request(method, path, json=body)
            assert response.status == 503, await response.text()
            assert response.headers["Retry-After"]
            assert response.content_type == "application/problem+json"
            problem = await response.json()
            assert "unexpected error" in problem["detail"]
    failures = [r for r in caplog.records if getattr(r, "action", None) == "db_failed"]
    assert len(failures) == 2 and all(r.exc_info for r in failures)
    assert "UndefinedTableError" in getattr(failures[0], "error", "")
