"""What several scenarios share: starting the service and the baseline
servers, rotating the order of variants between repeats, and the section shape
of the report."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from bench.context import Context
from bench.procs import (
    MESSAGING,
    PYTHON,
    child_env,
    default_settings_env,
    next_port,
    running,
    wait_until_ready,
)

T = TypeVar("T")


def rotated(items: Sequence[T], repeat: int) -> list[T]:
    """The variants in a different order each repeat, so that a slow spell of
    the shared machine does not always fall on the same variant."""
    shift = repeat % len(items)
    return [*items[shift:], *items[:shift]]


def tag() -> str:
    """A prefix that makes provider ids unique to one measurement."""
    return uuid.uuid4().hex[:8]


@asynccontextmanager
async def service(
    ctx: Context,
    database_url: str,
    name: str,
    *,
    worker: bool,
    env: dict[str, str] | None = None,
    pids: list[int] | None = None,
    defaults: bool = False,
) -> AsyncIterator[str]:
    """`messaging serve` on its own port and database; yields its base URL.

    worker=False asks for the API alone (`--no-worker`) where the CLI offers it;
    pids, if given, receives the server process's pid (for CPU figures);
    defaults=True runs it with no setting but where to listen and which database
    (not even the bench's LOG_LEVEL=WARNING), as a user's first start runs it."""
    port = next_port()
    argv = [MESSAGING, "serve"]
    if not worker and ctx.can.serve_without_worker:
        argv.append("--no-worker")
    overrides = {"DATABASE_URL": database_url, "HOST": "127.0.0.1", "PORT": str(port)}
    environ = default_settings_env if defaults else child_env
    async with running(name, argv, environ({**overrides, **(env or {})})) as proc:
        if pids is not None:
            pids.append(proc.pid)
        base = f"http://127.0.0.1:{port}"
        await wait_until_ready(f"{base}/healthz", proc)
        yield base


@asynccontextmanager
async def baseline(module: str, *args: str) -> AsyncIterator[tuple[str, int]]:
    """A baseline server (bench.bare_server, bench.baseline_server, or
    bench.durable_server with its database URL in args) on its own port; yields
    its base URL and pid."""
    port = next_port()
    argv = [PYTHON, "-m", module, str(port), *args]
    async with running(module.rsplit(".", 1)[1], argv) as proc:
        base = f"http://127.0.0.1:{port}"
        await wait_until_ready(f"{base}/healthz", proc)
        yield base, proc.pid


def section(
    title: str,
    *,
    what: str,
    tables: list[dict[str, Any]] | None = None,
    raw: Any = None,
    summary: dict[str, Any] | None = None,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "title": title,
        "status": "ok",
        "what": what,
        "tables": tables or [],
        "raw": raw,
        "summary": summary or {},
        "notes": notes or [],
    }


def skipped(title: str, reason: str) -> dict[str, Any]:
    return {"title": title, "status": "skipped", "reason": reason, "tables": [], "summary": {}}


def table(title: str, columns: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    return {"title": title, "columns": columns, "rows": rows}
