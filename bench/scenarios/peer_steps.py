"""Running one step of a peer (bench/peers/cli.py, a process of its own) from a
scenario: its command line, and the install every measurement starts with."""

from __future__ import annotations

from bench.procs import PYTHON, run_command


def command(peer: str, step: str, url: str, *options: str) -> list[str]:
    return [PYTHON, "-m", "bench.peers.cli", peer, step, url, *options]


async def install(peer: str, url: str) -> None:
    """The peer's own schema (its queue tables) in the database at url."""
    code, out = await run_command(command(peer, "install", url), limit_s=120)
    if code != 0:
        raise RuntimeError(f"{peer} install failed:\n{out[-2000:]}")
