"""The typed client's CPU per event of GET /api/events, without a server: what
bench/stream_consumers.py measures with py-spy, reduced to the client's own
work, so that a change to the parser or the decoding can be timed in seconds.

    python -m bench.client_decode [--events N] [--frames-per-chunk K] [--runs R]

N frames in the service's exact format (messaging/http/events.py `render`: the
message as the lists show it, a ~100-character body) are cut into chunks of K
frames, as a consumer's socket delivers them when the service writes a batch,
after the stream's first frame (`retry:` and `id:`). Two figures, each the
median of R runs of CPU time (time.process_time) divided by N:

- parse: SSEParser.feed over the chunks, events out (no JSON);
- stream: the whole path a consumer pays for, an EventStream of
  MessagingClient.events() iterated to its N-th typed StreamEvent over an
  in-memory connection whose reads never wait (the socket and aiohttp's HTTP
  parsing are left out).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import msgspec

from messaging.client import MessagingClient, SSEParser

_encode = msgspec.json.encode
# As the service writes them: its first frame, then each event's.
FIRST_FRAME = b"retry: 1000\nid: 0-0\n\n"
BODY = (
    "Hi Ana, your order #48213 has shipped and should arrive on Thursday. "
    "Reply STOP to opt out of updates."
)
assert 95 <= len(BODY) <= 105


def frame(n: int) -> bytes:
    """Event n as messaging/http/events.py renders it (format copied, not
    imported, so that the bench times the client alone)."""
    mms = n % 4 == 0
    message = {
        "id": 100_000 + n,
        "direction": "outbound" if n % 2 else "inbound",
        "type": "mms" if mms else "sms",
        "from": "+12016661234",
        "to": "+18045551234",
        "conversation_id": 1_000 + n % 50,
        "body": BODY,
        "body_truncated": False,
        "attachments": ["https://example.com/images/receipt-48213.jpg"] if mms else [],
        "timestamp": f"2024-11-01T14:{n // 60 % 60:02d}:{n % 60:02d}Z",
        "status": "queued",
    }
    event_type = "message.created"
    data = _encode(
        {"type": event_type, "conversation_id": message["conversation_id"], "message": message}
    )
    position = f"{7_000_000 + n // 3}-{n}"
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (position.encode(), event_type.encode(), data)


def chunks(events: int, frames_per_chunk: int) -> list[bytes]:
    frames = [frame(n) for n in range(events)]
    return [FIRST_FRAME] + [
        b"".join(frames[i : i + frames_per_chunk]) for i in range(0, events, frames_per_chunk)
    ]


def parse_run(data: list[bytes], events: int) -> float:
    parser = SSEParser()
    start = time.process_time()
    seen = 0
    for chunk in data:
        seen += len(parser.feed(chunk))
    elapsed = time.process_time() - start
    assert seen == events, seen
    return elapsed


class _Content:
    def __init__(self, data: list[bytes]) -> None:
        self._chunks = iter(data)

    async def readany(self) -> bytes:
        return next(self._chunks, b"")


class _Response:
    """What EventStream reads of an aiohttp.ClientResponse."""

    status = 200
    content_type = "text/event-stream"

    def __init__(self, data: list[bytes]) -> None:
        self.content = _Content(data)

    def close(self) -> None:
        pass


class _Session:
    def __init__(self, data: list[bytes]) -> None:
        self._data = data

    async def get(self, url: str, **kwargs: Any) -> _Response:
        return _Response(self._data)


async def stream_run(data: list[bytes], events: int) -> float:
    session: Any = _Session(data)
    async with MessagingClient("http://in-memory", session=session) as client:
        stream = client.events()
        seen = 0
        start = time.process_time()
        async for event in stream:
            seen += 1
            if seen == events:
                last = event.message.id
                break
        elapsed = time.process_time() - start
        assert last == 100_000 + events - 1, last
        await stream.aclose()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--frames-per-chunk", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    data = chunks(args.events, args.frames_per_chunk)
    size = sum(map(len, data)) / args.events
    print(
        f"{args.events} events of ~{size:.0f} bytes, {args.frames_per_chunk} per chunk, "
        f"median of {args.runs} runs (one warm-up run first)"
    )
    for name, run in [
        ("parse", lambda: parse_run(data, args.events)),
        ("stream", lambda: asyncio.run(stream_run(data, args.events))),
    ]:
        run()
        per_event = [run() / args.events * 1e6 for _ in range(args.runs)]
        runs = " ".join(f"{us:.2f}" for us in per_event)
        print(f"{name:>6}: {statistics.median(per_event):6.2f} µs/event  (runs: {runs})")


if __name__ == "__main__":
    main()
