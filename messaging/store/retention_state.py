"""The retention_state table: when the last retention batch ended, and the lock
that lets one batch run at a time (retention_state.sql beside this module).
Both run inside the batch's transaction (worker/retention.py)."""

from __future__ import annotations

from messaging.store.db import Conn
from messaging.store.queries import query

_TAKE_TURN = query("retention_state.sql", "take_turn")
_END_TURN = query("retention_state.sql", "end_turn")


async def take_turn(conn: Conn, pause_s: float) -> bool:
    """Whether this transaction may delete a batch now (see take_turn)."""
    turn: bool = await conn.fetchval(_TAKE_TURN, pause_s)
    return turn


async def end_turn(conn: Conn) -> None:
    await conn.execute(_END_TURN)
