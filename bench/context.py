"""What every scenario is given: the profile (how long, how many repeats), the
databases, and what this machine and branch can run."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from typing import Any

from bench.db import Databases, Server
from bench.procs import MESSAGING, child_env, run_command


@dataclass(frozen=True)
class Profile:
    name: str
    repeats: int
    # Load before each measurement that is not counted: pools fill, caches warm.
    warmup_s: int
    ingest_s: int
    ingest_connections: int
    # The whole pipeline under closed-loop load (scenarios/pipeline.py).
    pipeline_s: int
    e2e_s: float
    e2e_rates: tuple[int, ...]
    e2e_sweeps_ms: tuple[int, ...]
    # Latency under load: measured seconds per open-loop run (after the client's
    # warm-up second), at each rate, bare handler then service.
    latency_s: float
    latency_rates: tuple[int, ...]
    drain_events: int
    drain_workers: tuple[int, ...]
    peer_enqueue_s: float
    peer_drain_jobs: int
    # procrastinate drains a few hundred no-op jobs/s here (under 1,000 on a
    # quiet machine): fewer keep the runs short (the full peers scenario to ~8 min).
    procrastinate_drain_jobs: int
    # Events drained by each peer's same-work jobs per repeat (one transaction
    # per job: a few thousand/s for pgqueuer, a few hundred for procrastinate).
    peer_work_jobs: int
    procrastinate_work_jobs: int
    # Try each peer's main setting on a smaller drain first and use the best.
    peer_sweep: bool
    peer_latency_s: float
    peer_latency_rate: int
    pgbench_s: int
    pgbench_clients: tuple[int, ...]
    # The event stream (scenarios/stream.py): measured seconds of each open-loop
    # run, at each rate with each count of consumers connected; the closed-loop
    # ingest's measured seconds, with no consumer and with stream_ingest_consumers;
    # how long the consumers may go on reading, once the load is over, what the
    # service still has for them.
    stream_s: float
    stream_rates: tuple[int, ...]
    stream_consumers: tuple[int, ...]
    stream_ingest_s: int
    stream_ingest_consumers: int
    stream_drain_s: float
    # Worker processes, direct and through PgBouncer (scenarios/scale.py): the
    # counts of `messaging worker` processes; the events of each drain and the
    # measured seconds of each pipeline run (smaller than sections 7's and 2's,
    # for twelve variants a repeat); PgBouncer's server connections.
    scale_workers: tuple[int, ...]
    scale_drain_events: int
    scale_pipeline_s: int
    scale_pool_size: int


FULL = Profile(
    name="full",
    repeats=3,
    warmup_s=2,
    ingest_s=10,
    ingest_connections=64,
    pipeline_s=12,
    e2e_s=30.0,
    e2e_rates=(200, 2000),
    e2e_sweeps_ms=(1000, 100),
    latency_s=30.0,
    latency_rates=(2000, 200),
    drain_events=100_000,
    drain_workers=(1, 2),
    peer_enqueue_s=10.0,
    peer_drain_jobs=50_000,
    procrastinate_drain_jobs=10_000,
    peer_work_jobs=20_000,
    procrastinate_work_jobs=3_000,
    peer_sweep=True,
    peer_latency_s=30.0,
    peer_latency_rate=200,
    pgbench_s=10,
    pgbench_clients=(1, 8, 32),
    stream_s=5.0,
    stream_rates=(200, 2000),
    stream_consumers=(1, 50),
    stream_ingest_s=8,
    stream_ingest_consumers=50,
    stream_drain_s=5.0,
    scale_workers=(1, 2, 4),
    scale_drain_events=50_000,
    scale_pipeline_s=8,
    scale_pool_size=8,
)

# About two minutes: the same scenarios, three short repeats, smaller volumes.
QUICK = Profile(
    name="quick",
    repeats=3,
    warmup_s=1,
    ingest_s=2,
    ingest_connections=64,
    pipeline_s=3,
    e2e_s=2.0,
    e2e_rates=(200, 2000),
    e2e_sweeps_ms=(1000, 100),
    latency_s=3.0,
    latency_rates=(2000, 200),
    drain_events=30_000,
    drain_workers=(1, 2),
    peer_enqueue_s=1.0,
    peer_drain_jobs=30_000,
    procrastinate_drain_jobs=1_000,
    peer_work_jobs=2_000,
    procrastinate_work_jobs=200,
    peer_sweep=False,
    peer_latency_s=2.0,
    peer_latency_rate=200,
    pgbench_s=1,
    pgbench_clients=(1, 8, 32),
    stream_s=0.5,
    stream_rates=(200, 2000),
    stream_consumers=(1, 50),
    stream_ingest_s=2,
    stream_ingest_consumers=50,
    stream_drain_s=1.0,
    scale_workers=(1, 2),
    scale_drain_events=10_000,
    scale_pipeline_s=2,
    scale_pool_size=8,
)


@dataclass(frozen=True)
class Capabilities:
    """What the checked-out service offers; the worker is being built elsewhere."""

    worker: bool  # `messaging worker` exists
    serve_without_worker: bool  # `messaging serve --no-worker` exists
    wrk: str | None  # path of wrk, or None: the aiohttp load generator stands in

    @classmethod
    async def probe(cls) -> Capabilities:
        env = child_env()
        worker_code, _ = await run_command([MESSAGING, "worker", "--help"], env, limit_s=60)
        _, serve_help = await run_command([MESSAGING, "serve", "--help"], env, limit_s=60)
        return cls(
            worker=worker_code == 0,
            serve_without_worker="--no-worker" in serve_help,
            wrk=shutil.which("wrk"),
        )


@dataclass(frozen=True)
class Context:
    profile: Profile
    server: Server
    databases: Databases
    can: Capabilities
    # Sections of the scenarios run so far, by name: a later scenario may set
    # its figures beside an earlier one's (the peers table shows the service's).
    done: dict[str, dict[str, Any]] = field(default_factory=dict)
