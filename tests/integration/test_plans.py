"""The hot statements stay on their indexes once the tables are full (issue 13).

One database per module, filled by the benchmark's history generator
(bench/sql/growth.sql: 50,000 processed events, their messages and some sends,
in 500 conversations), plus a queue in flight (events due and claimed, sends
queued and sending), idempotency keys and a stream log, then ANALYZEd. Each
statement is the text the service runs (messaging/store/queries.py), explained
with parameters as the service passes them: none may read a large table from
end to end, and each walks the index its comment names. A plan that turns into
a sequential scan costs nothing on a young table and grows with the table's
rows, which only a filled table shows.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from bench.scenarios.growth import fill_history
from messaging.store.queries import query
from tests.pg import Server, fresh_database

EVENTS = 50_000
CONVERSATIONS = 500

# The queue in flight, the keys and the stream log, beside the history: a
# few rows in each partial index, as in a running service. The stream log holds
# 80 batches of the prune (a day of it holds far more): on a log of a few
# batches, reading it whole is the cheaper plan, and rightly so.
ARRANGE = """
INSERT INTO inbound_events (channel, provider_message_id, message_type, from_address,
                            to_address, payload, status, next_attempt_at)
SELECT 'sms', 'due-' || i, 'sms', '+18045550001', '+12016661234', '{}',
       CASE WHEN i % 10 = 0 THEN 'error' ELSE 'received' END, now() - interval '1 second'
FROM generate_series(1, 200) AS i;

INSERT INTO inbound_events (channel, provider_message_id, message_type, from_address,
                            to_address, payload, status, processor_id, claimed_at)
SELECT 'sms', 'claimed-' || i, 'sms', '+18045550001', '+12016661234', '{}', 'processing',
       'worker-1', now() - interval '1 second' * i
FROM generate_series(1, 200) AS i;

INSERT INTO messages (conversation_id, direction, message_type, from_address, to_address,
                      body, sent_at, status, next_attempt_at, processor_id, claimed_at,
                      delivery_attempts)
SELECT (SELECT min(id) FROM conversations), 'outbound', 'sms', '+12016660001', '+18040000001',
       'queued ' || i, now(), CASE WHEN i % 2 = 0 THEN 'queued' ELSE 'sending' END, now(),
       CASE WHEN i % 2 = 0 THEN NULL ELSE 'worker-1' END,
       CASE WHEN i % 2 = 0 THEN NULL ELSE now() - interval '1 second' * i END, 1
FROM generate_series(1, 200) AS i;

INSERT INTO idempotency_keys (key, endpoint, request_hash, message_id, created_at)
SELECT 'key-' || m.id, 'sms', md5(m.id::text), m.id, m.sent_at
FROM messages AS m
WHERE m.direction = 'outbound'
ORDER BY m.id
LIMIT 2000;

INSERT INTO stream_events (type, conversation_id, message_id, status, created_at)
SELECT 'message.created', 1 + i % 500, i, 'received', now() - interval '2 days' + interval '1 second' * i
FROM generate_series(1, 80000) AS i;

ANALYZE;
"""

# Tables whose every row no hot statement may read.
LARGE = {"inbound_events", "messages", "idempotency_keys", "stream_events"}
DAY_S = 86_400.0
WEEK_S = 7 * DAY_S


@pytest.fixture(scope="module")
def filled_url(pg_server: Server, pg_template: str) -> Iterator[str]:
    with fresh_database(pg_server, pg_template) as url:
        asyncio.run(_fill(url))
        yield url


async def _fill(url: str) -> None:
    await fill_history(url, EVENTS, CONVERSATIONS)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(ARRANGE)
    finally:
        await conn.close()


@pytest.fixture
async def filled(filled_url: str) -> Any:
    conn = await asyncpg.connect(filled_url)
    yield conn
    await conn.close()


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


async def explain(conn: asyncpg.Connection, sql: str, *args: object) -> list[dict[str, Any]]:
    """Every node of the statement's plan for these parameters (EXPLAIN alone:
    nothing runs)."""
    text = await conn.fetchval("EXPLAIN (FORMAT JSON) " + sql, *args)
    return list(_nodes(json.loads(text)[0]["Plan"]))


def scans(nodes: list[dict[str, Any]]) -> list[str]:
    """What each node reads: "<node> on <table>", with " using <index>" for
    an index (a bitmap index scan names its index alone)."""
    return [
        f"{n['Node Type']} on {n.get('Relation Name', '')}"
        + (f" using {n['Index Name']}" if "Index Name" in n else "")
        for n in nodes
        if "Relation Name" in n or "Index Name" in n
    ]


async def explain_generic(
    conn: asyncpg.Connection, sql: str, *args: object
) -> list[dict[str, Any]]:
    """The same for the generic plan: what PostgreSQL may settle on for a
    statement that asyncpg prepared once and runs again and again (after five
    runs, when its estimate is no worse than the custom plans')."""
    await conn.execute("SET plan_cache_mode = force_generic_plan")
    await conn.execute("PREPARE hot_statement AS " + sql)
    try:
        # EXECUTE takes no bind parameters: the values go in as literals,
        # quoted by the server.
        statement = await conn.fetchval(
            "SELECT format('EXPLAIN (FORMAT JSON) EXECUTE hot_statement(%s)',"
            " string_agg(quote_literal(a), ', ' ORDER BY n))"
            " FROM unnest($1::text[]) WITH ORDINALITY AS t(a, n)",
            [str(a) for a in args],
        )
        text = await conn.fetchval(statement)
    finally:
        await conn.execute("DEALLOCATE hot_statement")
        await conn.execute("RESET plan_cache_mode")
    return list(_nodes(json.loads(text)[0]["Plan"]))


async def middle_page(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT count(*) / 2 FROM conversations"))


async def a_conversation(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT id FROM conversations ORDER BY id OFFSET 250 LIMIT 1"))


# (file, query, the index it must walk, its parameters: a callable of the
# connection for those read from the data).
CASES: list[tuple[str, str, str, Any]] = [
    ("inbound_events.sql", "claim_events", "inbound_events_due_idx", ("worker-2", 500)),
    ("inbound_events.sql", "select_stale_claims", "inbound_events_claimed_idx", (60.0, 100)),
    ("inbound_events.sql", "prune_events", "inbound_events_processed_idx", (WEEK_S, 1000)),
    ("messages.sql", "claim_sends", "messages_outbound_due_idx", ("worker-2", 32)),
    ("messages.sql", "select_stale_sends", "messages_outbound_claimed_idx", (60.0, 100)),
    (
        "messages.sql",
        "list_messages",
        "messages_conversation_sent_at_idx",
        lambda conn: _list_messages_args(conn),
    ),
    ("conversations.sql", "list_conversations", "conversations_last_activity_idx", (50, 0)),
    (
        "conversations.sql",
        "list_conversations",
        "conversations_last_activity_idx",
        lambda conn: _middle_args(conn),
    ),
    (
        "idempotency_keys.sql",
        "prune_idempotency_keys",
        "idempotency_keys_created_at_idx",
        (DAY_S, 1000),
    ),
    ("stream_events.sql", "prune_events", "stream_events_pkey", (DAY_S, 1000)),
]


async def _list_messages_args(conn: asyncpg.Connection) -> tuple[object, ...]:
    return (await a_conversation(conn), 50, 0, 4000)


async def _middle_args(conn: asyncpg.Connection) -> tuple[object, ...]:
    return (50, await middle_page(conn))


@pytest.mark.slow
@pytest.mark.parametrize("plan", ["custom", "generic"])
@pytest.mark.parametrize(
    ("filename", "name", "index", "args"),
    CASES,
    ids=[f"{c[1]}-{i}" for i, c in enumerate(CASES)],
)
async def test_statement_stays_on_its_index(
    filled: asyncpg.Connection, filename: str, name: str, index: str, args: Any, plan: str
) -> None:
    """Both the plan made for these parameters and the generic plan a prepared
    statement may settle on."""
    params = await args(filled) if callable(args) else args
    planned = explain if plan == "custom" else explain_generic
    found = scans(await planned(filled, query(filename, name), *params))
    assert not [s for s in found if s.startswith("Seq Scan") and s.split()[-1] in LARGE], found
    assert any(s.endswith(f"using {index}") for s in found), found
