"""A TCP proxy to the PostgreSQL server that can make a connection die silently."""

from __future__ import annotations

import asyncio


class FreezableProxy:
    """A TCP proxy to the PostgreSQL server. freeze() stops forwarding on the
    connections open so far without closing them: to both ends they look alive
    but nothing arrives any more, as when a route silently drops packets."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._frozen: list[asyncio.Event] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.connections = 0

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    def freeze(self) -> None:
        for frozen in self._frozen:
            frozen.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host, port = self._target
        if host.startswith("/"):
            return await asyncio.open_unix_connection(f"{host}/.s.PGSQL.{port}")
        return await asyncio.open_connection(host, port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        frozen = asyncio.Event()
        self._frozen.append(frozen)
        up_reader, up_writer = await self._open_upstream()
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, frozen), self._pump(up_reader, writer, frozen)
            )
        except (asyncio.CancelledError, ConnectionError):
            pass
        finally:
            for w in (writer, up_writer):
                w.close()
            self._tasks.discard(task)

    @staticmethod
    async def _pump(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, frozen: asyncio.Event
    ) -> None:
        while not frozen.is_set():
            data = await reader.read(65536)
            if not data or frozen.is_set():
                break
            writer.write(data)
            await writer.drain()
        if frozen.is_set():
            # Hold the connection open, silent, until the test ends.
            await asyncio.Event().wait()
