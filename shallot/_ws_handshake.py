"""The opening handshake of a ``@websocket`` connection: ``on_connect``'s verdict carried out
(accept, close, or an HTTP denial), and the refusal of a handshake over ``max_connections``.
"""

from __future__ import annotations

import logging

from ._asgi import deny_handshake
from ._errors import ASGIProtocolError
from ._streaming import INTERNAL_ERROR
from ._types import ConnectHook, Message, Receive, Request, Send
from ._ws_messages import TRY_AGAIN_LATER, classify_connect
from .response import text

logger = logging.getLogger("shallot")


async def handshake(
    request: Request, receive: Receive, send: Send, on_connect: ConnectHook | None
) -> bool:
    """Performs the opening handshake; returns whether the connection was accepted."""
    message: Message = await receive()
    if message["type"] == "websocket.disconnect":
        return False
    if message["type"] != "websocket.connect":
        raise ASGIProtocolError(
            f"a websocket began with {message['type']!r}, not websocket.connect"
        )
    if on_connect is None:
        await send({"type": "websocket.accept", "subprotocol": None})
        return True
    try:
        result = await on_connect(request)
        # what it returned is read here too: a dict of its own make may raise as it is read
        verdict, answer = classify_connect(result, list(request.get("subprotocols") or ()))
    except Exception:
        logger.exception("websocket on_connect hook failed; handshake refused")
        await deny_handshake(request, send, INTERNAL_ERROR)
        return False
    if verdict == "accept":
        await send(answer)  # type: ignore[arg-type]
        return True
    if verdict == "close":
        await send(answer)  # type: ignore[arg-type]
    elif verdict == "http":
        await deny_handshake(request, send, answer)
    else:
        logger.error("websocket handshake refused: %s", answer)
        await deny_handshake(request, send, INTERNAL_ERROR)
    return False


async def refuse_when_full(request: Request, receive: Receive, send: Send) -> None:
    """Refuses a handshake over ``max_connections``: 503 where the server can answer a
    handshake with an HTTP response (ASGI ``websocket.http.response``); elsewhere ASGI allows
    only a 403 before accept, which would tell the client the wrong thing, so the connection is
    accepted and closed at once with 1013 ("try again later")."""
    message: Message = await receive()
    if message["type"] != "websocket.connect":
        return  # the client left before the handshake
    try:
        if "websocket.http.response" in (request.get("extensions") or {}):
            await deny_handshake(request, send, _FULL)
        else:
            await send({"type": "websocket.accept", "subprotocol": None})
            await send({"type": "websocket.close", "code": TRY_AGAIN_LATER, "reason": _LATER})
    except OSError:  # ASGI 2.4: the client has gone
        pass


_LATER = "try again later"
_FULL = text(
    "Service Unavailable: too many connections, try again later",
    status=503,
    headers={"retry-after": "1"},
)
