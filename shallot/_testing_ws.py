"""The websocket side of ``shallot.testing``: a client session talking to the app in memory.

``open_websocket`` runs the app on a websocket scope inside the caller's task group, linked to
a ``WebSocketSession`` by two memory object streams: no threads, no sockets.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
import httpx
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._errors import single_exception
from ._failures import call_app
from ._types import ASGIApp, Message

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

_Data = TypeVar("_Data", str, bytes)


class WebSocketRejected(Exception):
    """The app refused the handshake: ``status`` is what the client saw (403 for a plain
    close before accept), with the response ``headers`` and ``body`` where it sent one."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        super().__init__(status)
        self.status = status
        self.headers = headers
        self.body = body


class WebSocketClosed(Exception):
    """The app closed the websocket; ``code`` and ``reason`` are what it sent."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


#: How long ``receive()`` waits for a message by default, in seconds.
RECEIVE_TIMEOUT = 10.0

#: How many messages from the app wait for the test to read them, as a real client's socket
#: buffers and library queue (websockets: 16 frames) hold them: a test that reads late gets
#: them, not a ``send_timeout`` close. A test of a slow client reads nothing for longer.
RECEIVE_BUFFER = 16


class WebSocketSession:
    """One client side of a websocket, talking to the app in memory. ``receive_timeout`` is
    how long each ``receive`` waits by default (None: forever)."""

    def __init__(
        self,
        to_app: MemoryObjectSendStream[Message],
        from_app: MemoryObjectReceiveStream[Message],
        path: str = "/",
        receive_timeout: float | None = RECEIVE_TIMEOUT,
    ) -> None:
        self._to_app = to_app
        self._from_app = from_app
        self.path = path
        self.receive_timeout = receive_timeout
        self.subprotocol: str | None = None
        self.accept_headers: list[tuple[bytes, bytes]] = []
        self.close_code: int | None = None
        self.close_reason = ""
        self._left = False

    async def send(self, data: str | bytes) -> None:
        """Sends a text (str) or binary (bytes) message to the app.

        Raises:
            WebSocketClosed: the connection is closed (the app's code and reason, once it has
                been read; 1006 when the app ended without a close).
        """
        key = "text" if isinstance(data, str) else "bytes"
        try:
            await self._to_app.send({"type": "websocket.receive", key: data})
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            raise WebSocketClosed(self.close_code or 1006, self.close_reason) from None

    async def send_text(self, data: str) -> None:
        """Sends a text message."""
        await self.send(str(data))

    async def send_bytes(self, data: bytes) -> None:
        """Sends a binary message."""
        await self.send(bytes(data))

    async def send_json(self, data: Any) -> None:
        """Sends ``data`` as JSON in a text message.

        Raises:
            TypeError: ``data`` is not JSON serializable.
        """
        await self.send(json.dumps(data, ensure_ascii=False, separators=(",", ":")))

    async def receive(self) -> str | bytes:
        """Returns the next message the app sent, waiting at most ``receive_timeout`` seconds
        (set it on the session, or with ``client.websocket(..., receive_timeout=...)``; None
        waits forever, for a test that bounds its waits itself with ``anyio.fail_after``).

        Raises:
            WebSocketClosed: the app closed the connection (its code and reason).
            TimeoutError: no message came in time.
        """
        if self.close_code is not None:
            raise WebSocketClosed(self.close_code, self.close_reason)
        limit = self.receive_timeout
        try:
            with anyio.fail_after(limit):
                message = await self._from_app.receive()
        except TimeoutError:
            raise TimeoutError(
                f"no message from the websocket {self.path} within {limit} s; "
                "set its receive_timeout to wait longer"
            ) from None
        except anyio.EndOfStream:  # the app ended without a close frame: a server sends 1006
            self.close_code = 1006
            raise WebSocketClosed(1006, "") from None
        if message["type"] == "websocket.send":
            text = message.get("text")
            return text if text is not None else bytes(message["bytes"])
        if message["type"] == "websocket.close":
            self.close_code = int(message.get("code") or 1000)
            self.close_reason = str(message.get("reason") or "")
            await self._leave(self.close_code)  # a client answers the close handshake
            raise WebSocketClosed(self.close_code, self.close_reason)
        raise RuntimeError(f"the app sent {message['type']!r} on an open websocket")

    async def receive_text(self) -> str:
        """Returns the next message, which must be text (see ``receive``).

        Raises:
            TypeError: the message is binary.
        """
        return await self._receive_a(str, "text")

    async def receive_bytes(self) -> bytes:
        """Returns the next message, which must be binary (see ``receive``).

        Raises:
            TypeError: the message is text.
        """
        return await self._receive_a(bytes, "binary")

    async def _receive_a(self, kind: type[_Data], name: str) -> _Data:
        message = await self.receive()
        if not isinstance(message, kind):
            raise TypeError(f"expected a {name} message, got {message!r}")
        return message

    async def receive_json(self) -> Any:
        """Returns the next message, a text message holding JSON, parsed (see ``receive``).

        Raises:
            TypeError: the message is binary.
            ValueError: the text is not JSON (``json.JSONDecodeError``).
        """
        return json.loads(await self.receive_text())

    async def wait_closed(self) -> int:
        """Reads and discards messages until the app closes; returns its close code. Each
        message is awaited at most ``receive_timeout`` seconds (see ``receive``)."""
        while True:
            try:
                await self.receive()
            except WebSocketClosed as closed:
                return closed.code

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Leaves the connection from the client side, as if the browser closed it."""
        await self._leave(code, reason)

    async def _leave(self, code: int, reason: str = "") -> None:
        if self._left:
            return
        self._left = True
        try:
            await self._to_app.send(
                {"type": "websocket.disconnect", "code": code, "reason": reason}
            )
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass
        self._to_app.close()


@asynccontextmanager
async def open_websocket(
    app: ASGIApp, scope: dict[str, Any], receive_timeout: float | None = RECEIVE_TIMEOUT
) -> AsyncIterator[WebSocketSession]:
    """Runs ``app`` on a websocket ``scope`` in a task group of the caller's, and yields the
    client's side of it once the handshake is accepted.

    Raises:
        WebSocketRejected: the app refused the handshake.
    """
    to_app_tx, to_app_rx = anyio.create_memory_object_stream[Message](math.inf)
    from_app_tx, from_app_rx = anyio.create_memory_object_stream[Message](RECEIVE_BUFFER)

    async def receive() -> Message:
        try:
            return await to_app_rx.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            return {"type": "websocket.disconnect", "code": 1006, "reason": ""}

    async def send(message: Message) -> None:
        try:
            await from_app_tx.send(message)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the client has left: like a server, drop what is sent after that

    async def run_app() -> None:
        with to_app_rx, from_app_tx:
            await call_app(app, scope, receive, send)

    session = WebSocketSession(to_app_tx, from_app_rx, scope["path"], receive_timeout)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_app)
            with from_app_rx:
                await to_app_tx.send({"type": "websocket.connect"})
                await _handshake(session, from_app_rx)
                try:
                    yield session
                finally:
                    with anyio.CancelScope(shield=True):
                        await session._leave(1000)
    except BaseExceptionGroup as group:
        raise single_exception(group) from None
    finally:
        to_app_tx.close()


async def _handshake(
    session: WebSocketSession, from_app: MemoryObjectReceiveStream[Message]
) -> None:
    first = await _first_reply(from_app)
    if first["type"] == "websocket.accept":
        session.subprotocol = first.get("subprotocol")
        session.accept_headers = list(first.get("headers") or [])
    elif first["type"] == "websocket.close":
        raise WebSocketRejected(403, [], b"")
    elif first["type"] == "websocket.http.response.start":
        body = b""
        async for part in from_app:
            body += bytes(part.get("body", b""))
            if not part.get("more_body", False):
                break
        raise WebSocketRejected(int(first["status"]), list(first.get("headers") or []), body)
    else:
        raise RuntimeError(f"the app answered a handshake with {first['type']!r}")


async def _first_reply(from_app: MemoryObjectReceiveStream[Message]) -> Message:
    try:
        return await from_app.receive()
    except anyio.EndOfStream:  # the app returned without answering: servers send 500
        raise WebSocketRejected(500, [], b"") from None


def websocket_scope(
    url: httpx.URL,
    headers: httpx.Headers,
    subprotocols: list[str],
    client: tuple[str, int],
    root_path: str,
    denial: bool,
    state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Returns the ASGI scope of a websocket handshake to ``url``, as a server builds it."""
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "wss" if url.scheme in ("https", "wss") else "ws",
        "path": url.path,
        "raw_path": url.raw_path.split(b"?", 1)[0],
        "query_string": url.query,
        "root_path": root_path,
        "headers": [(name.lower(), value) for name, value in headers.raw],
        "client": client,
        "server": (url.host, url.port or 80),
        "subprotocols": subprotocols,
        "state": dict(state or {}),
        "extensions": {"websocket.http.response": {}} if denial else {},
    }
