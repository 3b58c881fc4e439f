"""The api_keys table: the API's consumers, each a name, its scopes and the
SHA-256 of its key (never the key itself).

Every statement is a named query in api_keys.sql beside this module. Made,
listed and revoked by the CLI (`messaging keys`); read whole by the serving
processes' cache (apikeys.py), which also writes when keys were last used."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from messaging.store.db import Conn
from messaging.store.queries import query

# The NOTIFY channel of key changes (triggers/api_keys_notify.sql); the payload
# is the key's name.
CHANNEL = "api_keys"

_INSERT = query("api_keys.sql", "insert_api_key")
_LIST = query("api_keys.sql", "list_api_keys")
_LOAD = query("api_keys.sql", "load_api_keys")
_REVOKE = query("api_keys.sql", "revoke_api_key")
_RECORD_LAST_USED = query("api_keys.sql", "record_last_used")


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A key as requests are checked against it."""

    id: int
    name: str
    scopes: frozenset[str]
    secret_sha256: bytes
    revoked: bool

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> StoredKey:
        return cls(
            row["id"], row["name"], frozenset(row["scopes"]), row["secret_sha256"], row["revoked"]
        )


@dataclass(frozen=True, slots=True)
class KeySummary:
    """A key as the operator sees it in `messaging keys list`."""

    name: str
    scopes: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> KeySummary:
        return cls(
            row["name"],
            tuple(row["scopes"]),
            row["created_at"],
            row["last_used_at"],
            row["revoked_at"],
        )


@dataclass(frozen=True, slots=True)
class Revocation:
    revoked_at: datetime
    # False: the key was revoked before.
    now_revoked: bool


async def insert(conn: Conn, name: str, scopes: tuple[str, ...], secret_sha256: bytes) -> bool:
    """Store a new key; False if a key (revoked or not) already has the name."""
    return await conn.fetchrow(_INSERT, name, list(scopes), secret_sha256) is not None


async def list_keys(conn: Conn) -> list[KeySummary]:
    return [KeySummary.from_row(r) for r in await conn.fetch(_LIST)]


async def load(conn: Conn) -> list[StoredKey]:
    return [StoredKey.from_row(r) for r in await conn.fetch(_LOAD)]


async def revoke(conn: Conn, name: str) -> Revocation | None:
    """Revoke the key of that name (None: there is none)."""
    row = await conn.fetchrow(_REVOKE, name)
    return None if row is None else Revocation(row["revoked_at"], row["now_revoked"])


async def record_last_used(conn: Conn, used: Mapping[int, float]) -> None:
    """Record when keys were last used: key id -> a Unix time."""
    ids = list(used)
    times = [datetime.fromtimestamp(used[i], UTC) for i in ids]
    await conn.execute(_RECORD_LAST_USED, ids, times)
