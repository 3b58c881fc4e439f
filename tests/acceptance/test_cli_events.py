"""`messaging events` and `messaging replay`, run as the operator runs them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg

from tests.pg import ROOT
from tests.support.aliases import MakeWorker
from tests.support.arrange import insert_sms
from tests.support.checks import status_counts


async def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "messaging", *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url, "LOG_FORMAT": "text"},
        capture_output=True,
        text=True,
        timeout=60,
    )


async def dead_letters(db: asyncpg.Connection, count: int) -> list[int]:
    ids = await insert_sms(db, count, prefix="dead-")
    await db.execute(
        """UPDATE inbound_events SET status = 'dead_letter', attempt_count = 5,
                  last_error = 'boom: ' || id || E'\n second line'
           WHERE id = ANY($1)""",
        ids,
    )
    return ids


async def test_events_lists_dead_letters(database_url: str, db: asyncpg.Connection) -> None:
    empty = await cli(database_url, "events", "--status", "dead_letter")
    assert empty.returncode == 0, empty.stderr
    assert empty.stdout.strip() == "no events with status dead_letter"
    ids = await dead_letters(db, 2)
    await insert_sms(db, 3, prefix="alive-")
    listed = await cli(database_url, "events", "--status", "dead_letter")
    assert listed.returncode == 0, listed.stderr
    header, *lines = listed.stdout.strip().splitlines()
    assert header.split() == ["ID", "CHANNEL", "PROVIDER", "ID", "ATTEMPTS", "LAST", "ERROR"]
    assert [line.split()[:4] for line in lines] == [
        [str(ids[0]), "sms", "dead-1", "5"],
        [str(ids[1]), "sms", "dead-2", "5"],
    ]
    assert lines[0].endswith(f"boom: {ids[0]} second line")  # one line per event


async def test_replay_requeues_dead_letters_once(
    database_url: str, db: asyncpg.Connection, make_worker: MakeWorker
) -> None:
    first, second, third = await dead_letters(db, 3)
    [processed] = await insert_sms(db, 1, prefix="ok-")
    worker = await make_worker(start=False)
    await worker.inbound.drain()

    result = await cli(database_url, "replay", str(first), str(processed), "999999")
    assert result.returncode == 1  # some ids were not replayable
    assert f"requeued 1 event(s): {first}" in result.stdout
    # The reasons are the store's (ReplayResult.refusal), as POST /api/admin/events/replay says them.
    assert (
        f"not requeued: {processed} (status is processed; only dead_letter and error are replayed)"
        in result.stdout.splitlines()
    )
    assert "not requeued: 999999 (no such event)" in result.stdout.splitlines()
    row = await db.fetchrow("SELECT status, attempt_count FROM inbound_events WHERE id = $1", first)
    assert tuple(row) == ("received", 0)

    all_dead = await cli(database_url, "replay", "--all-dead")
    assert all_dead.returncode == 0, all_dead.stderr
    assert f"requeued 2 event(s): {second}, {third}" in all_dead.stdout

    await worker.inbound.drain()
    assert await status_counts(db) == {"processed": 4}
    assert await db.fetchval("SELECT count(*) FROM messages") == 4
    again = await cli(database_url, "replay", "--all-dead")
    assert again.stdout.strip() == "requeued 0 event(s)"


async def test_replay_needs_ids_or_all_dead(database_url: str) -> None:
    assert (await cli(database_url, "replay")).returncode == 2
    assert (await cli(database_url, "replay", "1", "--all-dead")).returncode == 2
