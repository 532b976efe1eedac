"""The HTTP side of ``shallot.testing``: httpx requests answered by the ASGI app in memory.

``ASGITransport`` runs the app once per request and hands httpx the whole response.
``open_stream`` runs the app in a task group of the caller's and hands its body over chunk by
chunk as the app sends it, for responses that never end (server-sent events) or must be read
as they come. Both build the scope a server would and play the client's side of the ASGI HTTP
protocol: the request body, then ``http.disconnect`` once the client is done.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
from anyio.streams.memory import MemoryObjectReceiveStream

from ._errors import single_exception
from ._failures import call_app
from ._types import ASGIApp, Message

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup


def http_scope(
    request: httpx.Request,
    client: tuple[str, int],
    root_path: str,
    state: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Returns the ASGI scope of ``request``, as a server builds it: ``state`` is the lifespan
    scope's state, of which each request gets a shallow copy (ASGI lifespan state)."""
    url = request.url
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": url.scheme,
        "path": url.path,
        "raw_path": url.raw_path.split(b"?", 1)[0],
        "query_string": url.query,
        "root_path": root_path,
        "headers": [(name.lower(), value) for name, value in request.headers.raw],
        "client": client,
        "server": (url.host, url.port or (443 if url.scheme == "https" else 80)),
        "state": dict(state or {}),
        "extensions": {},
    }


class _Exchange:
    """One request and its response, seen from the client: ``receive`` gives the app the
    request body, then ``http.disconnect`` once ``done`` is set; ``check`` vets what the app
    sends and keeps its start message."""

    def __init__(self, request: httpx.Request) -> None:
        self.chunks = _aiter_bytes(request)
        self.request_done = False
        self.done = anyio.Event()
        self.start: Message | None = None
        self.finished = False

    async def receive(self) -> Message:
        if self.request_done:
            await self.done.wait()
            return {"type": "http.disconnect"}
        try:
            chunk = await self.chunks.__anext__()
        except StopAsyncIteration:
            self.request_done = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": chunk, "more_body": True}

    def check(self, message: Message) -> bytes | None:
        """Returns the body bytes of a body message, None for the start message.

        Raises:
            RuntimeError: the app sent a message out of order or of the wrong type.
        """
        if message["type"] == "http.response.start":
            if self.start is not None:
                raise RuntimeError("the app sent http.response.start twice")
            self.start = message
            return None
        if message["type"] == "http.response.body":
            if self.start is None or self.finished:
                raise RuntimeError(f"the app sent {message['type']} out of order")
            self.finished = not message.get("more_body", False)
            return bytes(message.get("body", b""))
        raise RuntimeError(f"the app sent {message['type']!r} on an HTTP request")


class ASGITransport(httpx.AsyncBaseTransport):
    """Sends each httpx request to the ASGI app and collects its whole response."""

    def __init__(self, app: ASGIApp, client: tuple[str, int], root_path: str) -> None:
        self.app = app
        self.client = client
        self.root_path = root_path
        #: The lifespan scope's state (``TestClient`` sets it), copied into each request.
        self.state: dict[str, Any] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        exchange = _Exchange(request)
        body: list[bytes] = []

        async def send(message: Message) -> None:
            part = exchange.check(message)
            if part is not None:
                body.append(part)
                if exchange.finished:
                    exchange.done.set()

        try:
            scope = http_scope(request, self.client, self.root_path, self.state)
            await call_app(self.app, scope, exchange.receive, send)
        finally:
            exchange.done.set()
            await exchange.chunks.aclose()  # the app may have refused the body before its end
        if exchange.start is None:  # what a server answers for an app that never responded
            return httpx.Response(500, request=request)
        if not exchange.finished:  # a server aborts such a response; its client sees it cut
            raise httpx.RemoteProtocolError(
                "the app returned before it finished its response", request=request
            )
        # A ByteStream, not content=, so httpx adds no content-length the app did not send.
        return httpx.Response(
            exchange.start["status"],
            headers=exchange.start.get("headers", []),
            stream=httpx.ByteStream(b"".join(body)),
            request=request,
        )


class _Chunks(httpx.AsyncByteStream):
    """The body of a streamed response: each chunk as the app sent it. An iterator object
    rather than an async generator, so that a reader who stops early leaves no generator of
    ours for the garbage collector (trio warns about those)."""

    def __init__(
        self,
        chunks: MemoryObjectReceiveStream[bytes],
        exchange: _Exchange,
        request: httpx.Request,
    ) -> None:
        self._chunks = chunks
        self._exchange = exchange
        self._request = request

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self._chunks.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            if not self._exchange.finished:  # a server aborts such a response
                raise httpx.RemoteProtocolError(
                    "the app returned before it finished its response", request=self._request
                ) from None
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        self._chunks.close()


@asynccontextmanager
async def open_stream(
    app: ASGIApp,
    request: httpx.Request,
    client: tuple[str, int],
    root_path: str,
    state: dict[str, Any] | None = None,
) -> AsyncIterator[httpx.Response]:
    """Runs ``app`` on ``request`` in a task group of the caller's and yields the response as
    soon as its start arrives, its body to be read as the app sends it. Leaving the block
    disconnects the client: the app sees ``http.disconnect`` and is cancelled.

    Raises:
        httpx.RemoteProtocolError: (while reading the body) the app returned before it finished
            its response.
    """
    exchange = _Exchange(request)
    chunks_tx, chunks_rx = anyio.create_memory_object_stream[bytes](0)
    responded = anyio.Event()

    async def send(message: Message) -> None:
        part = exchange.check(message)
        if part is None:
            responded.set()
            return
        try:
            if part:
                await chunks_tx.send(part)  # waits for the reader: backpressure, like a socket
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the client stopped reading and left: drop the rest, as a server does
        if exchange.finished:
            chunks_tx.close()

    async def run_app() -> None:
        with chunks_tx:
            try:
                scope = http_scope(request, client, root_path, state)
                await call_app(app, scope, exchange.receive, send)
            finally:
                responded.set()
                await exchange.chunks.aclose()  # the app may have refused the body before its end

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_app)
            with chunks_rx:
                await responded.wait()
                if exchange.start is None:  # what a server answers for an app that never did
                    yield httpx.Response(500, request=request)
                else:
                    yield httpx.Response(
                        exchange.start["status"],
                        headers=exchange.start.get("headers", []),
                        stream=_Chunks(chunks_rx, exchange, request),
                        request=request,
                    )
            exchange.done.set()
            tg.cancel_scope.cancel()  # the client left: an endless stream ends here
    except BaseExceptionGroup as group:
        raise single_exception(group) from None


async def _aiter_bytes(request: httpx.Request) -> Any:
    stream = request.stream
    if isinstance(stream, httpx.AsyncByteStream):
        iterator = stream.__aiter__()
        try:
            async for chunk in iterator:
                if chunk:
                    yield chunk
        finally:  # httpx's own generator, left unfinished when the app stops reading
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                    await aclose()
    else:  # pragma: no cover - httpx always gives an async stream to an async client
        for chunk in stream:
            if chunk:
                yield chunk
