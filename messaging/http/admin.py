"""The operator's routes (scope `admin` under API keys): what the queues hold, and
the dead letters and failed sends, replayed, purged or retried.

GET    /api/admin/queues                 events and sends by status, the backlog's
                                         age, NOTIFY queue usage, the processes
GET    /api/admin/events?status=...      dead letters (default) or events in error
POST   /api/admin/events/replay          {"ids": [...]} or {"all_dead": true}
DELETE /api/admin/events/{id}            purge a dead letter
GET    /api/admin/sends?status=failed    failed sends
POST   /api/admin/sends/{id}/retry       queue a failed send again, same provider key

The CLI's `messaging events` and `messaging replay` call the same store
functions. Counts never read the big tables whole: the processed events and the
sent messages are estimates (store/inbound_events.sql:status_counts,
store/messages.sql:send_counts), the rest come from partial indexes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from messaging.errors import FieldError, InvalidRequest, NotFound
from messaging.http.body import expect_handler, read_json
from messaging.http.keys import POOL, READ_SLOTS
from messaging.http.requests import parse_page, parse_path_id
from messaging.http.responses import json_response, page_response
from messaging.store import inbound_events, messages, processes
from messaging.store.db import connection
from messaging.store.inbound_events import EventSummary
from messaging.store.messages import SendRecord
from messaging.timestamps import format_timestamp

LISTED_EVENT_STATUSES = ("dead_letter", "error")
LISTED_SEND_STATUSES = ("failed",)
_BIGINT_MAX = 2**63 - 1


async def queues(request: web.Request) -> web.Response:
    pool = request.app[POOL]
    async with request.app[READ_SLOTS]:
        stats = await inbound_events.queue_stats(pool)
        async with connection(pool) as conn:
            events = await inbound_events.status_counts(conn)
            sends = await messages.send_counts(conn)
            running = await processes.list_processes(conn)
    return json_response(
        {
            "events": {
                "received": events.received,
                "error": events.error,
                "processing": events.processing,
                "dead_letter": events.dead_letter,
                "processed_estimate": events.processed_estimate,
                "due": stats.due,
                "oldest_due_age_seconds": round(stats.oldest_due_age_s, 3),
            },
            "sends": {
                "queued": sends.queued,
                "sending": sends.sending,
                "failed": sends.failed,
                "sent_estimate": sends.sent_estimate,
            },
            "notification_queue_usage": stats.notification_queue_usage,
            "processes": [_process(p) for p in running],
        }
    )


async def events(request: web.Request) -> web.Response:
    status = _status(request.query, LISTED_EVENT_STATUSES)
    wanted = parse_page(request.query)
    async with (
        request.app[READ_SLOTS],
        connection(request.app[POOL]) as conn,
        # One snapshot for the page and its total.
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        rows = await inbound_events.list_events(
            conn, status, wanted.page_size, offset=wanted.offset
        )
        total = await inbound_events.count_events(conn, status)
    return page_response(wanted.page, wanted.page_size, total, [_event(e) for e in rows])


async def replay(request: web.Request) -> web.Response:
    ids, all_dead = parse_replay(await read_json(request))
    async with connection(request.app[POOL]) as conn:
        if all_dead:
            requeued = await inbound_events.replay_dead_letters(conn)
            return json_response({"requeued": requeued, "not_requeued": []})
        results = await inbound_events.replay(conn, ids)
    return json_response(
        {
            "requeued": [r.event_id for r in results if r.requeued],
            "not_requeued": [
                {"id": r.event_id, "status": r.status_before, "reason": r.refusal}
                for r in results
                if not r.requeued
            ],
        }
    )


async def purge(request: web.Request) -> web.Response:
    event_id = parse_path_id(request.match_info["id"], "event")
    async with connection(request.app[POOL]) as conn:
        purged = await inbound_events.purge_dead_letter(conn, event_id)
    # A dead letter that was not purged was purged meanwhile, by another request.
    if purged.status_before in (None, "dead_letter") and not purged.purged:
        raise NotFound(f"There is no event {event_id}.")
    if not purged.purged:
        raise InvalidRequest(
            f"Event {event_id} is not a dead letter (status {purged.status_before}):"
            " only dead letters are purged.",
            status=409,
        )
    return web.Response(status=204)


async def sends(request: web.Request) -> web.Response:
    _status(request.query, LISTED_SEND_STATUSES)
    wanted = parse_page(request.query)
    async with request.app[READ_SLOTS], connection(request.app[POOL]) as conn:
        page = await messages.list_failed_sends(conn, limit=wanted.page_size, offset=wanted.offset)
    return page_response(wanted.page, wanted.page_size, page.total, [_send(s) for s in page.items])


async def retry(request: web.Request) -> web.Response:
    message_id = parse_path_id(request.match_info["id"], "send")
    async with connection(request.app[POOL]) as conn:
        retried = await messages.retry_failed_send(conn, message_id)
    if retried.status_before is None or retried.direction != "outbound":
        raise NotFound(f"There is no send {message_id}.")
    if retried.send is None and retried.status_before == "failed":
        # Failed at this statement's start, queued by another request since.
        raise InvalidRequest(
            f"Send {message_id} was retried meanwhile, by another request.", status=409
        )
    if retried.send is None:
        raise InvalidRequest(
            f"Send {message_id} has not failed (status {retried.status_before}):"
            " only failed sends are retried.",
            status=409,
        )
    return json_response(_send(retried.send))


def parse_replay(body: dict[str, Any]) -> tuple[list[int], bool]:
    """(ids, all_dead) of a replay request: exactly one of a non-empty list of
    event ids and `"all_dead": true`; InvalidRequest (400) otherwise."""
    has_ids, has_all = "ids" in body, "all_dead" in body
    if has_ids == has_all:
        raise InvalidRequest(
            "Give either ids (event ids) or all_dead (true), not both and not neither.",
            [FieldError("/ids" if has_ids else "/all_dead", "give exactly one of ids, all_dead")],
        )
    if has_all:
        if body["all_dead"] is not True:
            raise InvalidRequest(
                "all_dead must be true.", [FieldError("/all_dead", "must be true")]
            )
        return [], True
    ids = body["ids"]
    if not isinstance(ids, list) or not ids:
        raise InvalidRequest(
            "ids must be a non-empty list of event ids.",
            [FieldError("/ids", "must be a non-empty list of event ids")],
        )
    errors = [
        FieldError(f"/ids/{i}", "must be an event id (an integer from 1)")
        for i, value in enumerate(ids)
        # bool is an int to Python, not to JSON.
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _BIGINT_MAX
    ]
    if errors:
        raise InvalidRequest("ids must be a non-empty list of event ids.", errors)
    return ids, False


def _status(query: Mapping[str, str], allowed: tuple[str, ...]) -> str:
    """The status query parameter (the first allowed one when absent)."""
    status = query.get("status", allowed[0])
    if status not in allowed:
        raise InvalidRequest(
            "The status parameter is not valid.",
            [FieldError("status", f"must be one of: {', '.join(allowed)}")],
        )
    return status


def _event(e: EventSummary) -> dict[str, Any]:
    return {
        "id": e.id,
        "channel": e.channel,
        "provider_message_id": e.provider_message_id,
        "type": e.message_type,
        "status": e.status,
        "attempt_count": e.attempt_count,
        "last_error": e.last_error,
        "received_at": format_timestamp(e.received_at),
        "next_attempt_at": format_timestamp(e.next_attempt_at),
    }


def _send(s: SendRecord) -> dict[str, Any]:
    return {
        "id": s.id,
        "conversation_id": s.conversation_id,
        "type": s.message_type,
        "from": s.from_address,
        "to": s.to_address,
        "status": s.status,
        "attempt_count": s.delivery_attempts,
        "last_error": s.last_error,
        "provider_message_id": s.provider_message_id,
        "queued_at": format_timestamp(s.created_at),
        "next_attempt_at": format_timestamp(s.next_attempt_at),
    }


def _process(p: processes.ProcessRow) -> dict[str, Any]:
    return {
        "id": p.id,
        "kind": p.kind,
        "host": p.host,
        "pid": p.pid,
        "version": p.version,
        "started_at": format_timestamp(p.started_at),
        "heartbeat_at": format_timestamp(p.heartbeat_at),
        "heartbeat_age_seconds": round(p.heartbeat_age_s, 3),
        "fresh": p.fresh,
        "listener_state": p.listener_state,
        "listener_since": format_timestamp(p.listener_since),
    }


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/admin/queues", queues),
        web.get("/api/admin/events", events),
        web.post("/api/admin/events/replay", replay, expect_handler=expect_handler),
        web.delete(r"/api/admin/events/{id:\d+}", purge),
        web.get("/api/admin/sends", sends),
        web.post(r"/api/admin/sends/{id:\d+}/retry", retry),
    ]
