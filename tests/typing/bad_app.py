"""An app with mistakes that ``mypy --strict`` must report, one per line marked ``# error:``
with its error code. ``tests/test_types.py`` runs mypy on this file (which mypy's own run
leaves out) and compares. Never imported."""

from __future__ import annotations

from collections.abc import AsyncIterator

from shallot import Receiver, build_server, standard_not_found, websocket, ws_send
from shallot.middlewares import apply_middleware, wrap_routes
from shallot.response import text
from shallot.types import Request, Response, Route, WSMessage


def sync_handler(request: Request) -> Response:  # forgot the async
    return text("hi")


async def returns_a_string(request: Request) -> str:
    return "hi"


async def fine(request: Request, name: str) -> Response:
    return text(name)


async def on_start_with_no_scope() -> dict[str, str]:
    return {}


def on_stop_not_async(scope: Request) -> None:
    pass


async def on_connect_two_args(scope: Request, extra: int) -> WSMessage:
    return {}


@websocket  # error: arg-type
def not_a_generator(scope: Request, receiver: Receiver) -> None:
    pass


@websocket(on_connect=on_connect_two_args)  # error: arg-type
async def echo(scope: Request, receiver: Receiver) -> AsyncIterator[WSMessage]:
    async for message in receiver:
        yield ws_send(message)


routes: list[Route] = [
    ("/sync", ["GET"], sync_handler),  # error: list-item
    ("/str", ["GET"], returns_a_string),  # error: list-item
    ("/fine/{name}", ["GET"], fine),
    ("/echo", ["WS"], echo),
]
wrap_routes([("/swapped", fine, ["GET"])])  # error: list-item

pile = apply_middleware(wrap_routes(routes))(fine)
pile({"path": "/"}, 42)  # error: arg-type
apply_middleware(wrap_routes(routes))(sync_handler)  # error: arg-type

app = build_server(
    apply_middleware(wrap_routes(routes))(standard_not_found),
    on_start=on_start_with_no_scope,  # error: arg-type
    on_stop=on_stop_not_async,  # error: arg-type
)
