"""Real `messaging worker` processes on the test's database."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.pg import ROOT


class WorkerProcess:
    """A real `messaging worker` process on the test's database."""

    def __init__(self, database_url: str, log_dir: Path, name: str, **env: str) -> None:
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
            [sys.executable, "-m", "messaging", "worker"],
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


def terminate_quietly(processes: list[WorkerProcess]) -> None:
    for p in processes:
        with contextlib.suppress(Exception):
            p.stop_quietly()
