"""Runs one step of a peer in a process of its own (see bench/peers/__init__.py).

    python -m bench.peers.cli PEER install  URL
    python -m bench.peers.cli PEER seed     URL --jobs N
    python -m bench.peers.cli PEER enqueue  URL --seconds S --concurrency C
    python -m bench.peers.cli PEER produce  URL --rate R --seconds S
    python -m bench.peers.cli PEER work     URL [--record FILE] [--knob N]
    python -m bench.peers.cli PEER seed     URL --job work
    python -m bench.peers.cli PEER work     URL --job work [--knob N]

`enqueue` prints a line "PEER_JSON {...}". `work` runs until SIGTERM or SIGINT,
then writes the latencies it recorded (seconds) to FILE as a JSON list; --knob
overrides the peer's main setting (pgqueuer: batch size; procrastinate:
concurrency), to try settings. --job work seeds and works the same-work jobs
of bench/peers/work.py instead of no-op jobs: one per event waiting in the
(migrated) database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
from types import ModuleType

PEERS = ("pgqueuer", "procrastinate")


def driver(peer: str) -> ModuleType:
    if peer == "pgqueuer":
        from bench.peers import pgqueuer_peer

        return pgqueuer_peer
    from bench.peers import procrastinate_peer

    return procrastinate_peer


async def _work(
    peer: ModuleType, url: str, record: list[float] | None, knob: int | None, job: str
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if job == "work":
        await peer.work_same(url, stop, knob)
    else:
        await peer.work(url, stop, record, knob)


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.peers.cli", description=__doc__)
    parser.add_argument("peer", choices=PEERS)
    parser.add_argument("command", choices=("install", "seed", "enqueue", "produce", "work"))
    parser.add_argument("url")
    parser.add_argument("--jobs", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--concurrency", type=int)
    parser.add_argument("--rate", type=float)
    parser.add_argument("--record")
    parser.add_argument("--knob", type=int)
    parser.add_argument("--job", choices=("noop", "work"), default="noop")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    try:
        import uvloop  # the service runs on uvloop; so do the peers

        uvloop.install()
    except ImportError:
        pass
    peer = driver(args.peer)
    if args.command == "install":
        asyncio.run(peer.install(args.url))
    elif args.command == "seed" and args.job == "work":
        print(f"seeded {asyncio.run(peer.seed_work(args.url))} same-work jobs")
    elif args.command == "seed":
        asyncio.run(peer.seed(args.url, args.jobs))
    elif args.command == "enqueue":
        result = asyncio.run(peer.enqueue(args.url, args.seconds, args.concurrency))
        print("PEER_JSON " + json.dumps(result))
    elif args.command == "produce":
        asyncio.run(peer.produce(args.url, args.rate, args.seconds))
    else:
        record: list[float] | None = [] if args.record else None
        asyncio.run(_work(peer, args.url, record, args.knob, args.job))
        if args.record:
            with open(args.record, "w", encoding="utf-8") as f:
                json.dump(record, f)


if __name__ == "__main__":
    main()
