"""Reading conversations and their messages.

GET /api/conversations                  newest activity first
GET /api/conversations/{id}/messages    oldest first

Both answer {"items": [...], "meta": {"page", "page_size", "total"}} and take the
query parameters page and pageSize (payloads.parse_page).
"""

from __future__ import annotations

import html
import re
from typing import Any

from aiohttp import web

from messaging.errors import NotFound
from messaging.http.keys import POOL
from messaging.payloads import PageRequest, format_timestamp, parse_page
from messaging.store.conversations import (
    ConversationSummary,
    LastMessage,
    MessageRecord,
    Page,
    list_conversations,
    list_messages,
)

PREVIEW_CHARS = 160
_BIGINT_MAX = 2**63 - 1
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


async def conversations(request: web.Request) -> web.Response:
    wanted = parse_page(request.query)
    page = await list_conversations(request.app[POOL], limit=wanted.page_size, offset=wanted.offset)
    return _page_response(page, wanted, [_conversation(c) for c in page.items])


async def messages(request: web.Request) -> web.Response:
    conversation_id = _conversation_id(request.match_info["id"])
    wanted = parse_page(request.query)
    page = await list_messages(
        request.app[POOL], conversation_id, limit=wanted.page_size, offset=wanted.offset
    )
    return _page_response(page, wanted, [_message(m) for m in page.items])


def _conversation_id(raw: str) -> int:
    # An id that is no integer, or one no bigint can hold, names no conversation.
    if raw.isascii() and raw.isdigit() and 0 < int(raw) <= _BIGINT_MAX:
        return int(raw)
    raise NotFound(f"There is no conversation {raw[:40]!r}.")


def _page_response(
    page: Page[Any], wanted: PageRequest, items: list[dict[str, Any]]
) -> web.Response:
    return web.json_response(
        {
            "items": items,
            "meta": {"page": wanted.page, "page_size": wanted.page_size, "total": page.total},
        }
    )


def _conversation(c: ConversationSummary) -> dict[str, Any]:
    return {
        "id": c.id,
        "channel": c.kind,
        "participants": list(c.participants),
        "message_count": c.message_count,
        "last_activity_at": format_timestamp(c.last_activity_at),
        "last_message": _last_message(c.last_message) if c.last_message else None,
    }


def _last_message(m: LastMessage) -> dict[str, Any]:
    return {
        "id": m.id,
        "direction": m.direction,
        "type": m.message_type,
        "from": m.from_address,
        "to": m.to_address,
        "preview": preview(m.body, m.message_type),
        "timestamp": format_timestamp(m.sent_at),
    }


def _message(m: MessageRecord) -> dict[str, Any]:
    return {
        "id": m.id,
        "direction": m.direction,
        "type": m.message_type,
        "from": m.from_address,
        "to": m.to_address,
        "body": m.body,
        "attachments": m.attachments,
        "timestamp": format_timestamp(m.sent_at),
        "status": m.status,
    }


def preview(body: str, message_type: str) -> str:
    """A one-line plain-text start of a body: email HTML loses its tags and entities,
    runs of white space become one space, and a cut is marked with an ellipsis."""
    text = html.unescape(_TAG.sub(" ", body)) if message_type == "email" else body
    text = _SPACE.sub(" ", text).strip()
    if len(text) <= PREVIEW_CHARS:
        return text
    return text[: PREVIEW_CHARS - 1].rstrip() + "…"


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/conversations", conversations),
        web.get("/api/conversations/{id}/messages", messages),
    ]
