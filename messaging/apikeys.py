"""API keys: what a key is, and the cache every serving process checks requests
against without a database round trip.

A key is `msk_` and 32 random bytes (URL-safe base64): recognisable in a config
file or a leaked log, and unguessable. The database keeps its SHA-256 only.

KeyCache holds every key of the api_keys table in memory, by hash, and owns the
task that keeps it current:

- a change to a key (created, revoked) is NOTIFYed on CHANNEL by the changing
  transaction (triggers/api_keys_notify.sql); the subscriber drops that key at
  once and wakes the task, which reloads the table. A revocation reaches the
  process within milliseconds when the LISTEN connection is up.
- the task also reloads every `refresh_s` whatever happens, and the cache trusts
  a load for `max_age_s` only: past that (the database unreachable, LISTEN off or
  broken) the routes under keys answer 503 instead of honouring a key that may
  have been revoked since. So a revocation takes effect within max_age_s (5 s)
  in every case, NOTIFY or not.
- when a key was last used is kept in memory and written by the same task at
  most once every `flush_s` (a minute), never by a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import secrets
import time
from typing import Any

import asyncpg

from messaging.errors import DatabaseUnavailable, Unauthenticated
from messaging.store import api_keys
from messaging.store.api_keys import StoredKey
from messaging.store.db import connection

log = logging.getLogger(__name__)

PREFIX = "msk_"
SECRET_BYTES = 32
SCOPES = ("send", "read", "admin")
CHANNEL = api_keys.CHANNEL
# As the table's CHECK says: a NOTIFY payload and a CLI argument, plain.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
NAME_RULE = "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or a digit"
# Longer than any key we make by far: a longer Authorization is not hashed.
_MAX_KEY_CHARS = 256


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def key_hash(key: str) -> bytes:
    """The SHA-256 the database keeps of a key."""
    return hashlib.sha256(key.encode()).digest()


def parse_scopes(raw: str) -> tuple[str, ...]:
    """`send,read` -> ('send', 'read'); ValueError naming what is wrong."""
    scopes = tuple(s.strip() for s in raw.split(","))
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        named = ", ".join(map(repr, unknown))
        raise ValueError(f"unknown scope(s) {named}: use {', '.join(SCOPES)}")
    if len(set(scopes)) != len(scopes):
        raise ValueError(f"a scope is repeated in {raw!r}")
    return scopes


class KeyCache:
    """Every API key, by hash, kept current by its own task (see the module's
    opening lines). start() loads it and starts the task; close() stops it."""

    def __init__(
        self, *, refresh_s: float = 2.0, max_age_s: float = 5.0, flush_s: float = 60.0
    ) -> None:
        self._refresh_s = refresh_s
        self._max_age_s = max_age_s
        self._flush_s = flush_s
        self._pool: asyncpg.Pool | None = None
        self._keys: dict[bytes, StoredKey] = {}
        # monotonic time the last successful load started; None: none yet.
        self._loaded_at: float | None = None
        # Names notified while a load runs: that load's rows for them may
        # predate the change, so it leaves them out (the next load has them).
        self._changed: set[str] = set()
        # Key id -> Unix time of its last use, since the last flush.
        self._used: dict[int, float] = {}
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._last_error: str | None = None

    def authenticate(self, key: str) -> StoredKey:
        """The stored key a request's key is, if it is one and not revoked:
        Unauthenticated otherwise; DatabaseUnavailable when the cache is too old
        to say (the keys could not be reloaded for max_age_s)."""
        loaded_at = self._loaded_at
        if loaded_at is None or time.monotonic() - loaded_at > self._max_age_s:
            raise DatabaseUnavailable(
                "API keys cannot be checked: they could not be read from the database "
                f"for {self._max_age_s:g} s ({self._last_error or 'not loaded yet'})"
            )
        stored = None
        if key.startswith(PREFIX) and len(key) <= _MAX_KEY_CHARS:
            stored = self._keys.get(key_hash(key))
        if stored is None:
            raise Unauthenticated("The API key is not valid.", invalid_key=True)
        if stored.revoked:
            raise Unauthenticated(f"The API key {stored.name!r} was revoked.", invalid_key=True)
        self._used[stored.id] = time.time()
        return stored

    def changed(self, name: str) -> None:
        """The listener's subscriber: a key changed ('' after a (re)connection,
        when changes may have been missed). Returns at once."""
        if name:
            self._changed.add(name)
            self._keys = {h: k for h, k in self._keys.items() if k.name != name}
        self._wake.set()

    async def start(self, pool: asyncpg.Pool) -> None:
        """Load the keys (a failure is logged; the task retries) and start the task."""
        self._pool = pool
        await self._load_logged()
        self._task = asyncio.create_task(self._run(), name="api-keys")

    async def close(self) -> None:
        """Stop the task, then write when keys were last used."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self._flush_logged()

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """For /readyz: whether requests with keys can be checked now."""
        age = None if self._loaded_at is None else time.monotonic() - self._loaded_at
        ok = age is not None and age <= self._max_age_s
        details: dict[str, Any] = {"keys": sum(not k.revoked for k in self._keys.values())}
        if age is not None:
            details["loaded_s_ago"] = round(age, 3)
        if not ok and self._last_error:
            details["error"] = self._last_error
        return ok, details

    async def _run(self) -> None:
        next_flush = time.monotonic() + self._flush_s
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._refresh_s):
                    await self._wake.wait()
            if self._closing:
                return
            await self._load_logged()
            if time.monotonic() >= next_flush:
                await self._flush_logged()
                next_flush = time.monotonic() + self._flush_s

    async def _load_logged(self) -> None:
        try:
            await self._load()
        except Exception as exc:
            self._last_error = f"{type(exc).__name__}: {exc}"
            log.warning(
                "API keys could not be loaded; retrying",
                extra={"action": "api_keys_load_failed", "error": self._last_error},
            )

    async def _load(self) -> None:
        assert self._pool is not None
        self._wake.clear()
        self._changed = set()
        started = time.monotonic()
        async with connection(self._pool) as conn:
            rows = await api_keys.load(conn)
        changed = self._changed
        self._keys = {k.secret_sha256: k for k in rows if k.name not in changed}
        self._loaded_at = started
        self._last_error = None

    async def _flush_logged(self) -> None:
        if not self._used or self._pool is None:
            return
        used, self._used = self._used, {}
        try:
            async with connection(self._pool) as conn:
                await api_keys.record_last_used(conn, used)
        except Exception as exc:
            # Kept for the next flush, unless a newer use replaced it meanwhile.
            for key_id, at in used.items():
                self._used[key_id] = max(at, self._used.get(key_id, at))
            log.warning(
                "could not record when API keys were last used; retrying",
                extra={"action": "api_keys_flush_failed", "error": f"{type(exc).__name__}: {exc}"},
            )
