"""A fake ASGI websocket peer: two memory streams standing in for the server; ASGI scopes."""

from __future__ import annotations

import math
from typing import Any

import anyio

from shallot._types import ASGIApp, Message


def http_scope(path: str = "/", method: str = "GET") -> dict[str, Any]:
    """An HTTP scope as a server sends it, ``path`` decoded once (its raw form kept)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogatepass"),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }


def websocket_scope(
    path: str = "/ws", subprotocols: list[str] | None = None, denial: bool = True
) -> dict[str, Any]:
    return {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": "ws",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
        "subprotocols": subprotocols or [],
        "extensions": {"websocket.http.response": {}} if denial else {},
    }


class FakePeer:
    """Plays the server side of ASGI for one websocket connection.

    ``to_app`` carries what the client sends (its buffer size is the server's queue, so a
    small one shows backpressure); ``sent`` collects what the app sent.
    """

    def __init__(self, buffer: float = math.inf) -> None:
        self.to_app, self._to_app_rx = anyio.create_memory_object_stream[Message](buffer)
        self._from_app_tx, self.from_app = anyio.create_memory_object_stream[Message](math.inf)
        self.finished = anyio.Event()

    async def serve(self, app: ASGIApp, scope: dict[str, Any] | None = None) -> None:
        with self._to_app_rx, self._from_app_tx:
            try:
                await app(
                    scope or websocket_scope(), self._to_app_rx.receive, self._from_app_tx.send
                )
            finally:
                self.finished.set()

    async def connect(self) -> Message:
        await self.to_app.send({"type": "websocket.connect"})
        return await self.from_app.receive()

    async def send_text(self, text: str) -> None:
        await self.to_app.send({"type": "websocket.receive", "text": text})

    async def disconnect(self, code: int = 1001) -> None:
        await self.to_app.send({"type": "websocket.disconnect", "code": code})

    def sent_nowait(self) -> list[Message]:
        messages = []
        while True:
            try:
                messages.append(self.from_app.receive_nowait())
            except (anyio.WouldBlock, anyio.EndOfStream):
                return messages

    def close(self) -> None:
        self.to_app.close()
        self.from_app.close()


class Seen:
    """What the handler and the hooks saw, and an event set when ``on_close`` ran."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.closed = anyio.Event()

    async def on_close(self, scope: dict[str, Any]) -> None:
        self.events.append("on_close")
        self.closed.set()
