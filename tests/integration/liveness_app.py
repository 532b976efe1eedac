"""An app for the liveness tests over the hypercorn command (issues 13 and 14): a websocket
that pushes 64 KiB messages for as long as it can, with shallot's own send bound far away, and
writes ``on_close /push`` to stdout when its connection ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from shallot import Receiver, build_server, standard_not_found, websocket, ws_send
from shallot._types import Request, Scope
from shallot.middlewares import apply_middleware, wrap_routes

CHUNK = b"x" * 65536


async def _on_close(scope: Scope) -> None:
    print(f"on_close {scope['path']}", flush=True)


@websocket(on_close=_on_close, send_timeout=60)
async def push(scope: Request, receiver: Receiver) -> AsyncIterator[Any]:
    for _ in range(100_000):  # bounded: far more than any socket buffer
        yield ws_send(CHUNK)


app = build_server(apply_middleware(wrap_routes([("/push", ["WS"], push)]))(standard_not_found))
