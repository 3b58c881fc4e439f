"""What the machine and the database do while a measurement runs (bench
section 12): sampled every SAMPLE_S, so that a section can say where its ceiling
is from measurements. CPU seconds from /proc: the machine's busy and stolen time
(/proc/stat), PostgreSQL's (the postmaster, the children it reaped and those
alive), ours (this process and everything it started), and given processes by
role; the time processes spent ready to run but waiting for a core
(/proc/<pid>/schedstat); what the database's active backends wait on
(pg_stat_activity); the connections the service's pools hold and PgBouncer's
clients.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import math
import os
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from bench.cpu import total_cpu
from bench.queries import query

_BACKEND_PID = query("watch.sql", "backend_pid")
_POOL_BACKENDS = query("watch.sql", "pool_backends")
_BACKEND_WAITS = query("watch.sql", "backend_waits")

SAMPLE_S = 0.1
COUNT_EVERY = 5  # samples between two counts of connections
_TICKS = os.sysconf("SC_CLK_TCK")
# The processes whose time waiting for a core is read (run delay, per second).
QUEUE_ROLES = ("postgres", "api", "worker")


async def postmaster_of(url: str) -> psutil.Process | None:
    """PostgreSQL's postmaster, when it runs on this machine (the parent of a
    backend); None for a server elsewhere."""
    conn = await asyncpg.connect(url)
    try:
        # Asked while the backend lives: it ends with the connection.
        return psutil.Process(int(await conn.fetchval(_BACKEND_PID))).parent()
    except psutil.Error:
        return None
    finally:
        await conn.close()


# What a backend of the database is doing, by pg_stat_activity's wait event.
WAITS = {
    "cpu": "running or waiting for a core (no wait event)",
    "client": "waiting for the client mid-transaction (Client: ClientRead)",
    "notify": "NOTIFY's lock (Lock: object)",
    "rows": "row locks (Lock: transactionid, tuple)",
    "lock": "other heavyweight locks",
    "wal": "the commit's WAL flush (IO: WalSync, WalWrite; LWLock: WALWrite)",
    "lwlock": "other LWLocks",
    "io": "other I/O",
    "other": "other waits",
}
_WAL = {("IO", "WalSync"), ("IO", "WalWrite"), ("LWLock", "WALWrite")}


def wait_category(kind: str, event: str) -> str:
    if kind == "CPU":
        return "cpu"
    if (kind, event) == ("Client", "ClientRead"):
        return "client"
    if (kind, event) in _WAL:
        return "wal"
    if kind == "Lock":
        # The lock a NOTIFYing transaction takes on its database through its
        # commit (PreCommit_Notify) is the only object lock of this workload.
        if event == "object":
            return "notify"
        return "rows" if event in ("transactionid", "tuple") else "lock"
    return {"LWLock": "lwlock", "IO": "io"}.get(kind, "other")


@dataclass
class Samples:
    """Cumulative CPU seconds by role and the database's active backends by
    wait event, read every SAMPLE_S while a variant ran; the most connections
    seen."""

    times: list[float] = field(default_factory=list)
    cpu: list[dict[str, float]] = field(default_factory=list)
    waits: list[tuple[float, dict[str, int]]] = field(default_factory=list)
    pool_backends: int = 0
    bouncer_clients: int = 0
    started: float = 0.0
    ended: float = 0.0

    def at(self, role: str, t: float) -> float:
        """The role's CPU seconds at t, linear between the samples around it."""
        i = min(max(bisect.bisect_left(self.times, t), 1), len(self.times) - 1)
        t0, t1 = self.times[i - 1], self.times[i]
        v0, v1 = self.cpu[i - 1][role], self.cpu[i][role]
        return v0 + (v1 - v0) * (min(max(t, t0), t1) - t0) / (t1 - t0) if t1 > t0 else v1

    def figures(self, start: float, end: float) -> dict[str, Any]:
        """Over [start, end]: cores busy by role, the average active backends
        by wait; and the connection counts."""
        start, end = max(start, self.times[0]), min(end, self.times[-1])
        span = end - start
        cores = {
            role: (self.at(role, end) - self.at(role, start)) / span if span > 0 else math.nan
            for role in self.cpu[0]
        }
        # Ours other than the processes with a role of their own: the load
        # generator and the bench's process (its polls, this sampling).
        cores["bench"] = cores.pop("ours") - sum(
            cores.get(role, 0.0) for role in ("api", "worker", "pgbouncer")
        )
        cores["others"] = (
            cores["machine"]
            - cores["postgres"]
            - cores["bench"]
            - sum(cores.get(role, 0.0) for role in ("api", "worker", "pgbouncer"))
        )
        inside = [counts for t, counts in self.waits if start <= t <= end]
        events: dict[str, float] = {}
        for counts in inside:
            for event, n in counts.items():
                events[event] = events.get(event, 0.0) + n / len(inside)
        waits = dict.fromkeys(WAITS, 0.0 if inside else math.nan)
        for event, n in events.items():
            kind, _, name = event.partition(": ")
            waits[wait_category(kind, name)] += n
        return {
            "cores": cores,
            "cpu_window_s": span,
            "waits": waits,
            "wait_events": dict(sorted(events.items(), key=lambda kv: -kv[1])),
            "wait_samples": len(inside),
            "pool_backends": self.pool_backends,
            "bouncer_clients": self.bouncer_clients,
        }


@asynccontextmanager
async def watching(
    url: str,
    roles: dict[str, list[int]],
    postmaster: psutil.Process | None,
    bouncer: tuple[int | None, int | None],
    into: list[Samples],
) -> AsyncIterator[None]:
    """Sample while the block runs, every SAMPLE_S: the CPU of the machine, of
    PostgreSQL (postmaster's process tree), of ours (this process and what it
    started), of each role's pids and of PgBouncer (bouncer: its pid and port,
    or Nones); run delays; the database's active backends by wait event; and,
    every COUNT_EVERY samples, the pools' backends and PgBouncer's clients. The
    samples are appended to `into`."""
    samples = Samples()
    into.append(samples)
    bouncer_pid, bouncer_port = bouncer
    me = psutil.Process()
    queues = {role: RunQueue() for role in QUEUE_ROLES}

    def sample() -> None:
        machine, steal = _machine_cpu()
        pg = _postgres_processes(postmaster)
        cpu = {
            "machine": machine,
            "steal": steal,
            "postgres": _tree_cpu(postmaster, pg),
            "ours": _own_cpu(me, postmaster),
            "postgres_queue": queues["postgres"].read(p.pid for p in pg),
        }
        for role, pids in roles.items():
            cpu[role] = _or_nan(total_cpu(pids))
            if role in queues:
                cpu[f"{role}_queue"] = queues[role].read(pids)
        if bouncer_pid is not None:
            cpu["pgbouncer"] = _or_nan(total_cpu([bouncer_pid]))
        samples.times.append(time.monotonic())
        samples.cpu.append(cpu)

    async def loop(conn: asyncpg.Connection) -> None:
        for n in itertools.count(1):
            await asyncio.sleep(SAMPLE_S)
            sample()
            rows = await conn.fetch(_BACKEND_WAITS)
            waits = {
                f"{r['kind']}: {r['event']}" if r["event"] else r["kind"]: r["n"] for r in rows
            }
            samples.waits.append((time.monotonic(), waits))
            if n % COUNT_EVERY == 0:
                backends = int(await conn.fetchval(_POOL_BACKENDS))
                samples.pool_backends = max(samples.pool_backends, backends)
                clients = _tcp_clients(bouncer_pid, bouncer_port)
                samples.bouncer_clients = max(samples.bouncer_clients, clients)

    conn = await asyncpg.connect(url)
    try:
        samples.started = time.monotonic()
        sample()
        task = asyncio.create_task(loop(conn))
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
            sample()
            samples.ended = time.monotonic()
    finally:
        conn.terminate()  # the loop may have been cancelled inside a query


def _machine_cpu() -> tuple[float, float]:
    """The machine's busy CPU seconds (every process, over all cores), and the
    seconds the hypervisor gave to others (steal), from /proc/stat."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq) / _TICKS, steal / _TICKS


def _postgres_processes(postmaster: psutil.Process | None) -> list[psutil.Process]:
    """The postmaster and its children alive now."""
    if postmaster is None:
        return []
    try:
        return [postmaster, *postmaster.children()]
    except psutil.Error:
        return []


def _tree_cpu(postmaster: psutil.Process | None, processes: list[psutil.Process]) -> float:
    """CPU seconds of PostgreSQL: the postmaster (processes[0]), the children it
    has reaped, and those alive."""
    if postmaster is None or not processes:
        return math.nan
    try:
        t = postmaster.cpu_times()
    except psutil.Error:
        return math.nan
    total = t.children_user + t.children_system
    for process in processes:
        with suppress(psutil.Error):
            c = process.cpu_times()
            total += c.user + c.system
    return total


class RunQueue:
    """Seconds a changing set of processes spent ready to run but waiting for a
    core (/proc/<pid>/schedstat's run delay), from the first reading on: a
    process first seen later counts from its start, one that ends keeps what it
    had."""

    def __init__(self) -> None:
        self.total = 0.0
        self._last: dict[int, float] = {}
        self._first = True

    def read(self, pids: Iterable[int]) -> float:
        for pid in pids:
            try:
                delay = int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
            except (OSError, IndexError, ValueError):
                continue
            start = delay if self._first else 0.0
            self.total += delay - self._last.get(pid, start)
            self._last[pid] = delay
        self._first = False
        return self.total


def _own_cpu(me: psutil.Process, postmaster: psutil.Process | None) -> float:
    """CPU seconds of this process and every process it started (the load
    generator, the service's processes, PgBouncer), reaped ones included; a
    PostgreSQL started from here is PostgreSQL's, not ours."""
    t = me.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    excluded = {postmaster.pid} if postmaster else set()
    for child in me.children(recursive=True):
        with suppress(psutil.Error):
            if child.pid in excluded or child.ppid() in excluded:
                continue
            c = child.cpu_times()
            total += c.user + c.system
    return total


def _tcp_clients(pid: int | None, port: int | None) -> int:
    """Established client connections on PgBouncer's port."""
    if pid is None:
        return 0
    try:
        connections = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.Error:
        return 0
    return sum(
        1 for c in connections if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port
    )


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value
