"""Reading conversations and their messages.

GET /api/conversations                  newest activity first
GET /api/conversations/{id}/messages    oldest first
GET /api/messages/{id}                  one message, whole

The lists answer {"items": [...], "meta": {"page", "page_size", "total"}} and take
the query parameters page and pageSize (requests.parse_page). A page is bounded
in bytes as well as in rows: a body in a list is cut to LIST_BODY_CHARS characters
(body_truncated: true), and GET /api/messages/{id} answers the whole message.
At most MESSAGING_MAX_CONCURRENT_READS reads are served at once; the rest wait,
so that heavy reads cannot take the event loop and the pool from the webhooks.

Which database answers (store/replica.py):
- the conversation list: the read replica while it is fresh (at most
  MESSAGING_READ_MAX_LAG_MS behind), else the primary. A browsing view that may
  be a moment old, and the heaviest read (it sorts every conversation by
  activity and counts them), so the one worth moving off the primary.
- a conversation's messages and one message: the primary, always. They are what
  a client reads right after its own write: a send answers with its message's
  id and its conversation's, and the client reads them next, possibly through
  another API process. Only the primary is sure to hold that write, and
  knowing whether the replica has it would cost a question to the primary.
"""

from __future__ import annotations

import html
import re
from typing import Any

from aiohttp import web

from messaging.http.keys import POOL, READ_SLOTS, READS
from messaging.http.requests import parse_page, parse_path_id
from messaging.http.responses import json_response, page_response
from messaging.store.conversations import (
    ConversationSummary,
    LastMessage,
    list_conversations,
)
from messaging.store.messages import MessageRecord, get_message, list_messages
from messaging.timestamps import format_timestamp

PREVIEW_CHARS = 160
# A body in a list: every SMS whole (1,600 characters at most when concatenated),
# and the start of a long email.
LIST_BODY_CHARS = 4000
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


async def conversations(request: web.Request) -> web.Response:
    wanted = parse_page(request.query)
    async with request.app[READ_SLOTS]:
        page = await request.app[READS].run(
            lambda pool: list_conversations(pool, limit=wanted.page_size, offset=wanted.offset)
        )
        return page_response(
            wanted.page, wanted.page_size, page.total, [_conversation(c) for c in page.items]
        )


async def messages(request: web.Request) -> web.Response:
    conversation_id = parse_path_id(request.match_info["id"], "conversation")
    wanted = parse_page(request.query)
    async with request.app[READ_SLOTS]:
        page = await list_messages(
            request.app[POOL],
            conversation_id,
            limit=wanted.page_size,
            offset=wanted.offset,
            body_chars=LIST_BODY_CHARS,
        )
        return page_response(
            wanted.page, wanted.page_size, page.total, [message_json(m) for m in page.items]
        )


async def message(request: web.Request) -> web.Response:
    message_id = parse_path_id(request.match_info["id"], "message")
    async with request.app[READ_SLOTS]:
        return json_response(message_json(await get_message(request.app[POOL], message_id)))


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


def message_json(m: MessageRecord) -> dict[str, Any]:
    return {
        "id": m.id,
        "direction": m.direction,
        "type": m.message_type,
        "from": m.from_address,
        "to": m.to_address,
        "conversation_id": m.conversation_id,
        "body": m.body,
        "body_truncated": m.body_truncated,
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
        # Digits only, so that /api/messages/sms and /email stay POST-only routes.
        web.get(r"/api/messages/{id:\d+}", message),
    ]
