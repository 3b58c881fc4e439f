"""Type aliases for the fixtures the tests take."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp.test_utils import TestClient, TestServer

from messaging.worker.runner import Worker

Client = TestClient  # type: ignore[type-arg]
# The make_worker fixture: make_worker(start=True, listener=None, metrics=None, **settings).
MakeWorker = Callable[..., Awaitable[Worker]]
# pytest-aiohttp's aiohttp_server fixture.
ServerFactory = Callable[..., Awaitable[TestServer]]
