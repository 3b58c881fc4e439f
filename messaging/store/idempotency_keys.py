"""The idempotency_keys table: the Idempotency-Key of a send, kept with the
request it came with and the message it stored.

Every statement is a named query in idempotency_keys.sql beside this module; each
runs inside the caller's transaction (outbox.py)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from messaging.store.db import Conn
from messaging.store.queries import query

_LOCK = query("idempotency_keys.sql", "lock_idempotency_key")
_FIND = query("idempotency_keys.sql", "find_idempotency_key")
_INSERT = query("idempotency_keys.sql", "insert_idempotency_key")
_PRUNE = query("idempotency_keys.sql", "prune_idempotency_keys")


@dataclass(frozen=True, slots=True)
class KeyedSend:
    """The send a key names: the request's hash and what it stored."""

    request_hash: str
    message_id: int
    conversation_id: int

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> KeyedSend:
        return cls(row["request_hash"], row["message_id"], row["conversation_id"])


async def lock(conn: Conn, key: str) -> None:
    """Serialise the transactions that use one key, until this one ends."""
    await conn.execute(_LOCK, key)


async def find(conn: Conn, key: str) -> KeyedSend | None:
    row = await conn.fetchrow(_FIND, key)
    return None if row is None else KeyedSend.from_row(row)


async def insert(conn: Conn, key: str, endpoint: str, request_hash: str, message_id: int) -> None:
    await conn.execute(_INSERT, key, endpoint, request_hash, message_id)


async def prune(conn: Conn, *, retention_s: float, limit: int) -> int:
    """Delete up to `limit` of the keys first used longer than the retention ago,
    oldest first; how many were deleted."""
    deleted: int = await conn.fetchval(_PRUNE, retention_s, limit)
    return deleted
