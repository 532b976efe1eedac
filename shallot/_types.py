"""Type aliases shared by every module: requests, responses, handlers and ASGI callables.

Requests and responses stay open ``dict`` aliases on purpose: middlewares add keys, and a
TypedDict would fight that. Their keys are documented in ``docs/spec.md``. The ASGI messages
shallot builds are TypedDicts with literal type tags, so mypy checks each branch.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping, Sequence
from typing import Any, Literal, Protocol, TypeAlias, TypedDict

if sys.version_info >= (3, 11):
    from typing import NotRequired
else:  # anyio depends on typing_extensions below 3.13
    from typing_extensions import NotRequired

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]

Request: TypeAlias = dict[str, Any]
Response: TypeAlias = dict[str, Any]


class Takeover(Protocol):
    """What a handler may return instead of a response: ``takeover(receive, send)`` takes the
    raw ASGI connection over (``@websocket`` handlers return one)."""

    def __call__(self, receive: Receive, send: Send, /) -> Awaitable[None]: ...


HandlerResult: TypeAlias = Response | Takeover

# Handler, Next and Middleware are protocols rather than Callable aliases so that mypy's
# messages name them ("Handler") instead of spelling each one out: the candidates of an
# overloaded middleware factory filled a page.


class Handler(Protocol):
    """``async def handler(request, *route_args) -> response`` (or a takeover)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Awaitable[HandlerResult]: ...


class Next(Protocol):
    """The next middleware, as a middleware calls it: ``await next_middleware(handler,
    request)``."""

    def __call__(self, handler: Handler, request: Request, /) -> Awaitable[HandlerResult]: ...


class Middleware(Protocol):
    """``middleware(next_middleware) -> next``: wraps the rest of the pile."""

    def __call__(self, next_middleware: Next, /) -> Next: ...


#: One entry of a route table: ``(path, methods, handler)``, or ``(path, methods, handler,
#: name)`` for a route ``url_for`` can name.
Route: TypeAlias = tuple[str, Sequence[str], Handler] | tuple[str, Sequence[str], Handler, str]

#: What a websocket handler yields: ``ws_send(...)``, ``ws_close(...)`` or the same dict by hand.
WSMessage: TypeAlias = Mapping[str, Any]


#: What ``@websocket`` decorates: ``handler(scope, receiver, *route_args)``, an async generator
#: of messages, or a coroutine function whose result (a message or None) is sent last.
WSHandler: TypeAlias = (
    Callable[..., AsyncIterator[WSMessage]] | Callable[..., Awaitable[WSMessage | None]]
)

# The hooks stay Callable aliases: given to an overloaded function (``@websocket``), a protocol
# makes mypy list every overload instead of naming the argument that is wrong.

#: A lifespan or websocket hook: ``on_stop``, ``on_disconnect`` and ``on_close`` take the scope.
Hook: TypeAlias = Callable[[Request], Awaitable[object]]
#: ``on_start(scope)``: what it returns (a dict, or None) becomes ``request["config"]``.
StartHook: TypeAlias = Callable[[Request], Awaitable[dict[str, Any] | None]]
#: ``on_connect(scope)``: returns ``ws_accept(...)``, ``ws_close(...)`` or an HTTP response.
ConnectHook: TypeAlias = Callable[[Request], Awaitable[Mapping[str, Any]]]
#: A hook the shallot 2.0 way, without the scope: ``on_disconnect()``, ``on_close()``.
LegacyHook: TypeAlias = Callable[[], Awaitable[object]]


class HTTPResponseStart(TypedDict):
    """The ``http.response.start`` message (ASGI HTTP spec)."""

    type: Literal["http.response.start"]
    status: int
    headers: list[tuple[bytes, bytes]]


class HTTPResponseBody(TypedDict):
    """The ``http.response.body`` message (ASGI HTTP spec)."""

    type: Literal["http.response.body"]
    body: bytes
    more_body: bool


class WSSend(TypedDict):
    """The ``websocket.send`` message that ``ws_send`` builds: ``text`` or ``bytes``."""

    type: Literal["websocket.send"]
    text: NotRequired[str]
    bytes: NotRequired[bytes]


class WSClose(TypedDict):
    """The ``websocket.close`` message that ``ws_close`` builds."""

    type: Literal["websocket.close"]
    code: int
    reason: NotRequired[str]


class WSAccept(TypedDict):
    """The ``websocket.accept`` message that ``ws_accept`` builds."""

    type: Literal["websocket.accept"]
    subprotocol: str | None
    headers: NotRequired[list[tuple[bytes, bytes]]]
