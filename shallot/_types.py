"""Type aliases shared by every module: requests, responses, handlers and ASGI callables.

Requests and responses stay open ``dict`` aliases on purpose: middlewares add keys, and a
TypedDict would fight that. Their keys are documented in ``docs/spec.md``. The ASGI messages
shallot builds are TypedDicts with literal type tags, so mypy checks each branch.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Literal, TypeAlias, TypedDict

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

#: What a handler may return instead of a response: it takes the raw connection over.
Takeover: TypeAlias = Callable[[Receive, Send], Awaitable[None]]
HandlerResult: TypeAlias = Response | Takeover
Handler: TypeAlias = Callable[..., Awaitable[HandlerResult]]
Next: TypeAlias = Callable[[Handler, Request], Awaitable[HandlerResult]]
Middleware: TypeAlias = Callable[[Next], Next]


class HTTPResponseStart(TypedDict):
    type: Literal["http.response.start"]
    status: int
    headers: list[tuple[bytes, bytes]]


class HTTPResponseBody(TypedDict):
    type: Literal["http.response.body"]
    body: bytes
    more_body: bool


class WSSend(TypedDict):
    type: Literal["websocket.send"]
    text: NotRequired[str]
    bytes: NotRequired[bytes]


class WSClose(TypedDict):
    type: Literal["websocket.close"]
    code: int
    reason: NotRequired[str]


class WSAccept(TypedDict):
    type: Literal["websocket.accept"]
    subprotocol: str | None
    headers: NotRequired[list[tuple[bytes, bytes]]]
