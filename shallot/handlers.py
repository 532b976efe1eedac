"""Ready-made handlers: the default end of a middleware pile."""

from __future__ import annotations

from ._types import Request, Response
from .response import text

__all__ = ["standard_not_found"]


async def standard_not_found(request: Request) -> Response:
    """Answers what nothing else handled: ``405`` with an ``Allow`` header when the routing
    middleware found the path under other methods (``request["allowed_methods"]``), ``426``
    with ``Upgrade: websocket`` when it found the path routed for websockets only (an empty
    ``allowed_methods``), ``404`` otherwise. For a websocket request the answer denies the
    handshake."""
    allowed = request.get("allowed_methods")
    if allowed is not None and request.get("method") != "WS":
        if allowed:
            return text("Method Not Allowed", status=405, headers={"allow": ", ".join(allowed)})
        return text(
            "Upgrade Required: this is a websocket endpoint",
            status=426,
            headers={"upgrade": "websocket", "connection": "Upgrade"},
        )
    return text("Not Found", status=404)
