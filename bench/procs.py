"""Processes of a benchmark: started in their own process group, logged to
bench/.work/logs, and always stopped (SIGTERM, then SIGKILL after a grace
period) when their block ends, however it ends."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
WORK_DIR = ROOT / "bench" / ".work"
LOG_DIR = WORK_DIR / "logs"
PYTHON = sys.executable
MESSAGING = str(Path(sys.executable).parent / "messaging")

# Every server the suite starts listens on 127.0.0.1, on a port of this range.
_PORTS = itertools.cycle(range(18310, 18400))


def next_port() -> int:
    """A port for the next server; cycling avoids one still in TIME_WAIT."""
    return next(_PORTS)


def child_env(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child process: ours, quiet logs, plus overrides."""
    env = {**os.environ, "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(overrides or {})
    return env


def default_settings_env(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """child_env without any of the service's settings (LOG_*, MESSAGING_*, from
    the bench or from our own environment), plus overrides: the service then
    runs on its defaults."""
    env = {k: v for k, v in child_env().items() if not k.startswith(("LOG_", "MESSAGING_"))}
    env.update(overrides or {})
    return env


@asynccontextmanager
async def running(
    name: str, argv: list[str], env: Mapping[str, str] | None = None, grace: float = 15.0
) -> AsyncIterator[asyncio.subprocess.Process]:
    """Run argv for the duration of the block; its output goes to logs/<name>.log."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    with (LOG_DIR / f"{name}.log").open("ab") as log:
        log.write(f"\n=== {time.strftime('%H:%M:%S')} {' '.join(argv)}\n".encode())
        log.flush()
        proc = await asyncio.create_subprocess_exec(
            *argv,
            env=dict(env or child_env()),
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            cwd=ROOT,
            start_new_session=True,
        )
        try:
            yield proc
        finally:
            await stop(proc, grace)


async def stop(proc: asyncio.subprocess.Process, grace: float = 15.0) -> None:
    """SIGTERM the process's group (it leads one: start_new_session), wait for
    it, SIGKILL it if it outstays the grace period."""
    if proc.returncode is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            _signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()
    # Children the leader left behind in its group (none expected).
    _signal_group(proc.pid, signal.SIGKILL)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, sig)


async def wait_until_ready(
    url: str, proc: asyncio.subprocess.Process, limit_s: float = 60.0
) -> None:
    """Poll url until it answers 200; fail at once if the process has exited."""
    deadline = time.monotonic() + limit_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise RuntimeError(f"{url}: the process exited with {proc.returncode}")
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    if resp.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer 200 within {limit_s:.0f} s")


async def run_command(
    argv: list[str], env: Mapping[str, str] | None = None, limit_s: float = 600.0
) -> tuple[int, str]:
    """Run a short command to its end; (exit code, stdout and stderr). A command
    that outlives limit_s is stopped."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=dict(env or child_env()),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), limit_s)
    finally:
        await stop(proc, grace=5)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")
