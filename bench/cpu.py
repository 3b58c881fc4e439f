"""CPU time of processes on this machine, for the per-request cost figures: a
process's user + system time from /proc, and the PostgreSQL server's processes
(every pid pg_stat_activity lists, background processes included)."""

from __future__ import annotations

import os
from pathlib import Path

import asyncpg

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of one process; None when it is not visible here."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


async def server_pids(database_url: str) -> list[int]:
    """The PostgreSQL server's processes (client backends and background ones)."""
    conn = await asyncpg.connect(database_url)
    try:
        return [row["pid"] for row in await conn.fetch("SELECT pid FROM pg_stat_activity")]
    finally:
        await conn.close()


def total_cpu(pids: list[int]) -> float | None:
    """CPU seconds of these processes together; None if none is visible (a remote
    server)."""
    values = [v for v in (cpu_seconds(p) for p in pids) if v is not None]
    return sum(values) if values else None


def per_request(before: float | None, after: float | None, requests: int) -> float | None:
    """CPU microseconds per request between two readings of cpu_seconds or
    total_cpu; None where not visible."""
    if before is None or after is None or not requests:
        return None
    return (after - before) * 1e6 / requests
