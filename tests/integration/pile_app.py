"""The app the pile tests serve with hypercorn ("tests.integration.pile_app:pile_app").

Every built-in middleware, in the order docs/middlewares/README.md recommends, in front of HTTP
and websocket routes (issue 4):

    wrap_cors -> wrap_gzip -> wrap_static -> wrap_content_type -> wrap_cookies -> wrap_json
              -> wrap_parameters -> wrap_routes -> standard_not_found

The static folder is the folder of this module, so the test knows a file's bytes by reading
it from disk (``GET /pile_app.py``) and no data file has to be written or kept beside it.
"""

from __future__ import annotations

import json as std_json
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Any

from shallot import Receiver, build_server, standard_not_found, websocket, ws_close, ws_send
from shallot.middlewares import (
    apply_middleware,
    wrap_content_type,
    wrap_cookies,
    wrap_cors,
    wrap_gzip,
    wrap_json,
    wrap_parameters,
    wrap_routes,
    wrap_static,
)
from shallot.response import json, text
from shallot.types import Request, Response, Route, WSClose, WSSend

#: The one origin the CORS middleware allows.
ORIGIN = "https://app.example"
#: The folder wrap_static serves, and the file of it the tests fetch.
STATIC_FOLDER = Path(__file__).resolve().parent
STATIC_FILE = "pile_app.py"
#: What ``/api/stream`` sends: chunks of text, well over gzip's minimum size in all.
STREAM_CHUNKS = [f"line {number:04d} ".encode() * 16 for number in range(64)]


def big_payload() -> list[dict[str, Any]]:
    """The body of ``/api/big``: about 60 kB of JSON that compresses well."""
    return [{"id": number, "name": f"item {number}", "tags": ["a", "b"]} for number in range(2000)]


async def item(request: Request, item_id: str) -> Response:
    return json(
        {
            "item": item_id,
            "method": request["method"],
            "route": request["route"],
            "query_params": request["query_params"],
            "form_params": request["form_params"],
            "params": request["params"],
            "json": request["json"],
        },
        headers={"x-item": item_id},
    )


async def big(request: Request) -> Response:
    return json(big_payload())


async def _chunks() -> AsyncIterator[bytes]:
    for chunk in STREAM_CHUNKS:
        yield chunk


async def stream(request: Request) -> Response:
    return {"status": 200, "headers": {"content-type": "text/plain"}, "stream": _chunks()}


async def login(request: Request) -> Response:
    return {
        **text("logged in"),
        "cookies": {
            "session": {"value": "s3cret", "path": "/", "httponly": True, "samesite": "Lax"},
            "theme": {"value": "dark", "path": "/", "max-age": 3600},
        },
    }


async def whoami(request: Request) -> Response:
    return json(request["cookies"])


async def logout(request: Request) -> Response:
    return {**text("logged out"), "cookies": {"session": None}}


@websocket
async def echo(
    scope: dict[str, Any], receiver: Receiver, room: str
) -> AsyncGenerator[WSSend | WSClose, None]:
    # What the middlewares added to the handshake's request, for the client to check.
    yield ws_send(
        std_json.dumps(
            {
                "room": room,
                "route": scope["route"],
                "cookies": scope["cookies"],
                "query_params": scope["query_params"],
                "json": scope["json"],
            }
        )
    )
    async for message in receiver:
        if message == "bye":
            yield ws_close(1000, "bye")
            return
        yield ws_send(message if isinstance(message, bytes) else f"echo: {message}")


ROUTES: list[Route] = [
    ("/api/items/{item_id}", ["GET", "POST"], item),
    ("/api/big", ["GET"], big),
    ("/api/stream", ["GET"], stream),
    ("/session", ["POST"], login),
    ("/session", ["GET"], whoami),
    ("/session", ["DELETE"], logout),
    ("/ws/{room}", ["WS"], echo),
]

pile_app = build_server(
    apply_middleware(
        wrap_cors(
            [ORIGIN],
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["content-type", "x-token"],
            expose_headers=["x-item"],
            allow_credentials=True,
            max_age=600,
        ),
        wrap_gzip(),
        wrap_static("", root_path=STATIC_FOLDER),
        wrap_content_type(),
        wrap_cookies(),
        wrap_json(),
        wrap_parameters(),
        wrap_routes(ROUTES),
    )(standard_not_found),
    allowed_origins=[ORIGIN],  # the page's own site may open websockets, no other (issue 14)
)
