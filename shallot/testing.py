"""An in-memory test client that runs inside the caller's event loop, on asyncio or trio.

``TestClient`` runs the app's lifespan around an ``async with`` block and talks HTTP to it
through an httpx transport that calls the ASGI app directly: no threads, no sockets. It needs
``httpx`` (the ``test`` extra).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from types import TracebackType
from typing import Any

import anyio

try:
    import httpx
except ImportError as error:  # httpx comes with the test extra, not with shallot
    raise ImportError(
        "shallot.testing needs httpx: install shallot's 'test' extra (from a checkout: "
        "pip install -e '.[test]')"
    ) from error

from ._errors import single_exception
from ._lifespan_driver import LifespanDriver, LifespanError
from ._testing_http import ASGITransport, open_stream
from ._testing_ws import (
    RECEIVE_TIMEOUT,
    WebSocketClosed,
    WebSocketRejected,
    WebSocketSession,
    open_websocket,
    websocket_scope,
)
from ._types import ASGIApp

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

__all__ = [
    "LifespanError",
    "TestClient",
    "WebSocketClosed",
    "WebSocketRejected",
    "WebSocketSession",
]


class TestClient:
    """An in-memory client for a shallot (or any ASGI) app.

    ``async with TestClient(app) as client:`` runs the app's lifespan startup, and shutdown
    when the block ends; ``await client.get("/")`` returns an ``httpx.Response``. Cookies set by
    the app are kept and sent back, as a browser would.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        app: ASGIApp,
        *,
        base_url: str = "http://testserver",
        headers: dict[str, str] | None = None,
        cookies: dict[str, str] | None = None,
        client: tuple[str, int] = ("127.0.0.1", 50000),
        root_path: str = "",
        lifespan: bool = True,
    ) -> None:
        self.app = app
        self._lifespan = lifespan
        self._transport = ASGITransport(app, client, root_path)
        self._http = httpx.AsyncClient(
            transport=self._transport,
            base_url=base_url,
            headers=headers,
            cookies=cookies,
            follow_redirects=False,
        )
        self._stack: AsyncExitStack | None = None
        self._lifespan_driver: LifespanDriver | None = None

    @property
    def cookies(self) -> httpx.Cookies:
        """The cookies the client holds."""
        return self._http.cookies

    async def __aenter__(self) -> TestClient:
        stack = AsyncExitStack()
        await stack.__aenter__()
        task_group: anyio.abc.TaskGroup | None = None
        try:
            await stack.enter_async_context(self._http)
            if self._lifespan:
                task_group = await stack.enter_async_context(anyio.create_task_group())
                self._lifespan_driver = LifespanDriver(self.app)
                # what the app puts in the lifespan state reaches each request, as on a server
                self._transport.state = self._lifespan_driver.state
                await self._lifespan_driver.start(task_group)
        except BaseException:
            if task_group is not None:  # an app may wait for more after a failed startup
                task_group.cancel_scope.cancel()
            self._close_lifespan()
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        stack, self._stack = self._stack, None
        assert stack is not None, "TestClient was not entered"
        failure: str | None = None
        try:
            # A failed test still shuts the app down (on_stop cleans up, as on a server that
            # stops); a cancelled one does not: it must not wait on an app that does not stop.
            cancelled = exc_type is not None and issubclass(
                exc_type, anyio.get_cancelled_exc_class()
            )
            if self._lifespan_driver is not None and not cancelled:
                failure = await self._lifespan_driver.stop()  # noqa: ASYNC102
        finally:
            self._close_lifespan()
            try:
                await stack.__aexit__(exc_type, exc, tb)  # noqa: ASYNC102  # exits the group
            except BaseExceptionGroup as group:
                raise single_exception(group) from None
        if failure is not None and exc_type is None:  # the test's own error comes first
            raise LifespanError(f"lifespan shutdown failed: {failure}")
        return None

    def _close_lifespan(self) -> None:
        if self._lifespan_driver is not None:
            self._lifespan_driver.close()
            self._lifespan_driver = None

    def websocket(
        self,
        path: str,
        *,
        subprotocols: list[str] | None = None,
        headers: dict[str, str] | None = None,
        params: httpx._types.QueryParamTypes | None = None,
        receive_timeout: float | None = RECEIVE_TIMEOUT,
        denial_response: bool = True,
    ) -> AbstractAsyncContextManager[WebSocketSession]:
        """Opens a websocket to ``path``: ``async with client.websocket("/ws") as ws:``. It
        carries the client's headers and cookies, and ``params`` in its query string as
        httpx's requests do; leaving the block closes it from the client side (code 1000) if
        it is still open. Each ``ws.receive()`` waits at most ``receive_timeout`` seconds
        (None: forever), then raises ``TimeoutError``.

        ``denial_response=False`` plays a server without the ``websocket.http.response``
        extension, where every refused handshake is a 403.

        Raises:
            WebSocketRejected: the app refused the handshake.
        """
        http = self._http
        url = http.base_url.join(path)
        if params is not None:
            url = url.copy_merge_params(params)
        request_headers = httpx.Headers({"host": url.netloc.decode("ascii")})
        request_headers.update(http.headers)
        request_headers.update(headers or {})
        cookie_header = httpx.Request("GET", url, cookies=http.cookies).headers.get("cookie")
        if cookie_header:
            request_headers["cookie"] = cookie_header
        if subprotocols:
            request_headers["sec-websocket-protocol"] = ", ".join(subprotocols)
        scope = websocket_scope(
            url,
            request_headers,
            list(subprotocols or []),
            self._transport.client,
            self._transport.root_path,
            denial_response,
            self._transport.state,
        )
        return open_websocket(self.app, scope, receive_timeout)

    def stream(
        self, method: str, url: str, **kwargs: Any
    ) -> AbstractAsyncContextManager[httpx.Response]:
        """Sends a request and gives its response as soon as it starts, for its body to be
        read as the app sends it: ``async with client.stream("GET", "/events") as response:``,
        then ``response.aiter_bytes()``, ``aiter_lines()`` or ``aiter_text()``. Leaving the
        block disconnects, which ends even an endless response. Keyword arguments are
        httpx's; cookies the response sets are kept.
        """
        request = self._http.build_request(method, url, **kwargs)
        return self._stream(request)

    @asynccontextmanager
    async def _stream(self, request: httpx.Request) -> AsyncIterator[httpx.Response]:
        transport = self._transport
        async with open_stream(
            self.app, request, transport.client, transport.root_path, transport.state
        ) as response:
            self._http.cookies.extract_cookies(response)
            yield response

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Sends a request; keyword arguments are httpx's (``json=``, ``headers=``...)."""
        return await self._http.request(method, url, **kwargs)

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        """Sends a GET request."""
        return await self._http.request("GET", url, **kwargs)

    async def head(self, url: str, **kwargs: Any) -> httpx.Response:
        """Sends a HEAD request."""
        return await self._http.request("HEAD", url, **kwargs)

    async def options(self, url: str, **kwargs: Any) -> httpx.Response:
        """Sends an OPTIONS request."""
        return await self._http.request("OPTIONS", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        """Sends a POST request."""
        return await self._http.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> httpx.Response:
        """Sends a PUT request."""
        return await self._http.request("PUT", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        """Sends a PATCH request."""
        return await self._http.request("PATCH", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        """Sends a DELETE request."""
        return await self._http.request("DELETE", url, **kwargs)
