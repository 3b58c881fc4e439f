"""A real HTTP reverse proxy in front of the service that plays the network's and
the gateways' faults on cue: an answer lost after the service acted on the
request, a connection cut, a 429 or 503 of its own. It forwards everything else,
streams included, and records what arrived, so that a test proves how a client
retried by what reached the service."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from aiohttp.test_utils import unused_port
from multidict import CIMultiDict, CIMultiDictProxy

_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "upgrade"}
)


@dataclass(frozen=True)
class Answer:
    """Answer the client with this status (a problem+json body) without
    forwarding the request: the service never sees it."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LoseAnswer:
    """Forward the request and let the service act on it, then answer the client
    `instead` (a gateway's 503, say) or, without one, cut the connection: the
    service's answer is lost in transit."""

    instead: Answer | None = None


Fault = Answer | LoseAnswer


@dataclass(frozen=True)
class Arrival:
    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDictProxy[str]
    at: float  # time.monotonic() when the request arrived
    fault: Fault | None


class ScriptedProxy:
    """`proxy.on("POST", "/api/messages/sms", LoseAnswer(Answer(503)))`: the next
    request to that route meets that fault, the ones after it the next faults;
    a route with no fault left is forwarded."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.arrivals: list[Arrival] = []
        self._script: defaultdict[tuple[str, str], deque[Fault]] = defaultdict(deque)
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    def on(self, method: str, path: str, *faults: Fault) -> None:
        self._script[(method, path)].extend(faults)

    def arrived(self, method: str, path: str) -> list[Arrival]:
        return [a for a in self.arrivals if (a.method, a.path) == (method, path)]

    @asynccontextmanager
    async def running(self) -> AsyncIterator[ScriptedProxy]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        port = unused_port()
        site = web.TCPSite(runner, "127.0.0.1", port)
        # The service's own compression, if any, passes through untouched.
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            self._session = session
            await site.start()
            self.url = f"http://127.0.0.1:{port}"
            try:
                yield self
            finally:
                await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        body = await request.read()
        queue = self._script.get((request.method, request.path))
        fault = queue.popleft() if queue else None
        self.arrivals.append(
            Arrival(
                request.method,
                request.path,
                dict(request.query),
                request.headers,
                time.monotonic(),
                fault,
            )
        )
        if isinstance(fault, Answer):
            return _answer(fault)
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            headers=_forwardable(request.headers),
            data=body or None,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=None),
        ) as upstream:
            if isinstance(fault, LoseAnswer):
                await upstream.read()
                if fault.instead is not None:
                    return _answer(fault.instead)
                assert request.transport is not None
                request.transport.close()
                return web.Response(status=502)
            response = web.StreamResponse(
                status=upstream.status, headers=_forwardable(upstream.headers)
            )
            await response.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
            except aiohttp.ClientPayloadError:
                # The service went away mid-answer: so does the proxy.
                assert request.transport is not None
                request.transport.close()
                return response
            await response.write_eof()
            return response


def _forwardable(headers: CIMultiDictProxy[str]) -> CIMultiDict[str]:
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in _HOP_BY_HOP)


def _answer(answer: Answer) -> web.Response:
    return web.json_response(
        {
            "type": "about:blank",
            "title": "Injected",
            "status": answer.status,
            "detail": f"the proxy answered {answer.status} on cue",
        },
        status=answer.status,
        headers=answer.headers,
        content_type="application/problem+json",
    )
