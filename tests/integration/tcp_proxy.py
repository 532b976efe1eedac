"""A loopback TCP proxy whose connections the test can cut, as a network failure would, while
the server behind it stays up: ``cut()`` drops every connection and refuses new ones until
``restore()``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from anyio.abc import ByteStream, SocketStream

__all__ = ["Proxy", "open_proxy"]


class Proxy:
    """Forwards 127.0.0.1:``port`` to 127.0.0.1:``target``."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = 0
        self.open = True
        self._scopes: set[anyio.CancelScope] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        """Drops every connection (their sockets close) and refuses new ones."""
        self.open = False
        for scope in self._scopes:
            scope.cancel()

    def restore(self) -> None:
        self.open = True

    async def handle(self, client: SocketStream) -> None:
        async with client:
            if not self.open:
                return
            try:
                upstream = await anyio.connect_tcp("127.0.0.1", self.target)
            except OSError:
                return
            async with upstream, anyio.create_task_group() as tg:
                self._scopes.add(tg.cancel_scope)
                tg.start_soon(_pump, client, upstream, tg.cancel_scope)
                tg.start_soon(_pump, upstream, client, tg.cancel_scope)
                if not self.open:  # cut while connecting
                    tg.cancel_scope.cancel()
            self._scopes.discard(tg.cancel_scope)


async def _pump(source: ByteStream, sink: ByteStream, scope: anyio.CancelScope) -> None:
    try:
        async for data in source:
            await sink.send(data)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        pass
    scope.cancel()  # one side ended: end both


@asynccontextmanager
async def open_proxy(target: int) -> AsyncIterator[Proxy]:
    """Runs a proxy to ``target`` on a free loopback port for the duration of the block."""
    proxy = Proxy(target)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with listener, anyio.create_task_group() as tg:
        proxy.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        tg.start_soon(listener.serve, proxy.handle)
        try:
            yield proxy
        finally:
            tg.cancel_scope.cancel()
