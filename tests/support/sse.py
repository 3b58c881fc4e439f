"""Reading an event stream (GET /api/events) frame by frame, as it arrives on
the wire, for tests that look at the frames themselves: ids, comments, where
the stream ends."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass
class Frame:
    """One SSE frame: its fields (id, event, data, retry) and comment lines."""

    fields: dict[str, str] = field(default_factory=dict)
    comments: list[str] = field(default_factory=list)

    @property
    def id(self) -> str | None:
        return self.fields.get("id")

    @property
    def event(self) -> str | None:
        return self.fields.get("event")

    @property
    def data(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.fields["data"])
        return parsed


class Stream:
    """An open stream's response, read one frame at a time."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def frame(self, within: float = 10) -> Frame | None:
        """The next frame, or None when the server ended the stream."""
        frame = Frame()
        async with asyncio.timeout(within):
            while True:
                raw = await self.response.content.readline()
                if not raw:
                    return None
                line = raw.decode().rstrip("\r\n")
                if not line:
                    if frame.fields or frame.comments:
                        return frame
                    continue
                if line.startswith(":"):
                    frame.comments.append(line[1:].strip())
                    continue
                name, _, value = line.partition(":")
                frame.fields[name] = value.removeprefix(" ")

    async def event(self, within: float = 10) -> Frame:
        """The next frame that is an event (skipping heartbeats and id-only frames)."""
        while True:
            frame = await self.frame(within)
            assert frame is not None, "the stream ended"
            if "data" in frame.fields:
                return frame

    async def events(self, count: int, within: float = 10) -> list[Frame]:
        return [await self.event(within) for _ in range(count)]
