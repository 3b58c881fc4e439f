"""What the tests look at in the database: event statuses, the consistency of
messages and conversations with the events, the LISTEN connections."""

from __future__ import annotations

import asyncpg


async def status_counts(db: asyncpg.Connection) -> dict[str, int]:
    rows = await db.fetch("SELECT status, count(*) AS n FROM inbound_events GROUP BY status")
    return {r["status"]: r["n"] for r in rows}


async def assert_consistent(db: asyncpg.Connection) -> None:
    """Messages and conversations agree with the events: one message per
    processed event, none for others, and every conversation's count and last
    activity are those of its messages."""
    assert (
        await db.fetchval(
            """SELECT count(*) FROM inbound_events e
           WHERE (e.status = 'processed') <> EXISTS (SELECT 1 FROM messages m WHERE m.inbound_event_id = e.id)"""
        )
        == 0
    )
    assert (
        await db.fetchval("SELECT count(*) - count(DISTINCT inbound_event_id) FROM messages") == 0
    )
    wrong = await db.fetch(
        """SELECT c.id FROM conversations c
           LEFT JOIN (SELECT conversation_id, count(*) AS n, max(sent_at) AS last
                      FROM messages GROUP BY conversation_id) m ON m.conversation_id = c.id
           WHERE c.message_count <> coalesce(m.n, 0) OR c.last_activity_at <> m.last"""
    )
    assert wrong == []


async def listener_backends(db: asyncpg.Connection, pid: int | None = None) -> list[int]:
    """Backend pids of LISTEN connections on this database (of one worker
    process, given its OS pid)."""
    pattern = "messaging-listener %" if pid is None else f"messaging-listener %:{pid}:%"
    rows = await db.fetch(
        """SELECT pid FROM pg_stat_activity
           WHERE datname = current_database() AND application_name LIKE $1""",
        pattern,
    )
    return [r["pid"] for r in rows]


async def tables_holding(db: asyncpg.Connection, text: str) -> list[str]:
    """The tables of the database with a row whose text (every column, as
    PostgreSQL writes the row) contains `text`."""
    names = await db.fetch(
        "SELECT quote_ident(table_name) AS name FROM information_schema.tables"
        " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
    )
    holding = []
    for row in names:
        found = await db.fetchval(
            f"SELECT count(*) FROM {row['name']} AS t WHERE strpos(t::text, $1) > 0", text
        )
        if found:
            holding.append(row["name"])
    return holding
