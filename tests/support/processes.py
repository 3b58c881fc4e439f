"""Real `messaging` processes on the test's database: workers, servers and the
operator's commands."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from tests.pg import ROOT
from tests.support.waiting import wait_until


def cli(database_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `messaging ARGS` to its end on the test's database, as an operator
    would; its output kept apart (stdout, stderr). Blocking: call it from a
    thread (asyncio.to_thread) in an async test."""
    return subprocess.run(
        [sys.executable, "-m", "messaging", *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url, "LOG_FORMAT": "text", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class MessagingProcess:
    """A real, long-running `messaging` process (a subcommand and its arguments)
    on the test's database, its output (stdout and stderr) in log_dir/NAME.log."""

    def __init__(
        self, database_url: str, log_dir: Path, name: str, argv: list[str], **env: str
    ) -> None:
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("ab")
        environment = {
            **os.environ,
            "DATABASE_URL": database_url,
            "LOG_FORMAT": "text",
            "LOG_LEVEL": "INFO",
            **env,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "messaging", *argv],
            cwd=ROOT,
            env=environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self._log.close()

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, wait for the exit; the exit code."""
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self._log.close()
        return code

    def stop_quietly(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        if not self._log.closed:
            self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


class WorkerProcess(MessagingProcess):
    """A real `messaging worker` process on the test's database."""

    def __init__(self, database_url: str, log_dir: Path, name: str, **env: str) -> None:
        super().__init__(database_url, log_dir, name, ["worker"], **env)


class ServeProcess(MessagingProcess):
    """A real `messaging serve` (with its arguments) on the test's database, on
    127.0.0.1:port; with only DATABASE_URL and PORT set, as a deployment starts it."""

    def __init__(
        self, database_url: str, log_dir: Path, name: str, port: int, *args: str, **env: str
    ) -> None:
        super().__init__(database_url, log_dir, name, ["serve", *args], PORT=str(port), **env)
        self.base_url = f"http://127.0.0.1:{port}"

    async def ready(self, within: float = 30) -> None:
        """Wait until /readyz answers 200 (its LISTEN connection up); fail at
        once, with its output, if the process died."""

        async def answered() -> bool:
            try:
                async with (
                    aiohttp.ClientSession() as http,
                    http.get(f"{self.base_url}/readyz") as response,
                ):
                    return response.status == 200
            except aiohttp.ClientError:
                assert self.process.poll() is None, self.output()[-3000:]
                return False

        await wait_until(answered, within=within, interval=0.1)


def terminate_quietly(processes: Sequence[MessagingProcess]) -> None:
    for p in processes:
        with contextlib.suppress(Exception):
            p.stop_quietly()
