"""Static files with caching: ``examples/static/`` served with validators, 304s and gzip.

``wrap_static`` answers GET and HEAD for the files in the folder with an ``etag`` and a
``last-modified`` header, and ``304 Not Modified`` when the browser's copy is current. Two
small middlewares written here show how to add to that: ``wrap_index`` serves
``index.html`` for a path ending in ``/``, and ``wrap_cache_control`` tells browsers how long
they may keep each kind of file. ``wrap_gzip`` compresses what is worth compressing. One API
route (``/api/time``) shows that routes and files live side by side.

Run it with ``python examples/static_site.py`` (``trio`` as argument for trio) or
``hypercorn examples.static_site:app`` and open http://127.0.0.1:8000.
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import datetime, timezone

import anyio

from shallot import build_server, serve, standard_not_found
from shallot.middlewares import apply_middleware, wrap_gzip, wrap_routes, wrap_static
from shallot.response import json_response
from shallot.types import Handler, HandlerResult, Next, Request, Response

HERE = os.path.dirname(os.path.abspath(__file__))


def wrap_index(next_middleware: Next) -> Next:
    """Serves ``index.html`` for a path that ends in ``/``: ``GET /`` reads ``/index.html``."""

    async def add_index(handler: Handler, request: Request) -> HandlerResult:
        if request["path"].endswith("/"):
            request = {**request, "path": request["path"] + "index.html"}
        return await next_middleware(handler, request)

    return add_index


def wrap_cache_control(next_middleware: Next) -> Next:
    """Lets browsers keep stylesheets and scripts for an hour without asking; pages must be
    revalidated each time, which costs a ``304`` without a body while they are unchanged."""

    async def add_cache_control(handler: Handler, request: Request) -> HandlerResult:
        response = await next_middleware(handler, request)
        if not isinstance(response, dict) or response["status"] not in (200, 304):
            return response  # a websocket takeover, or an error: nothing to cache
        path = request["path"]
        policy = "public, max-age=3600" if path.endswith((".css", ".js")) else "no-cache"
        headers = response.get("headers") or {}
        if isinstance(headers, dict):
            headers = {**headers, "cache-control": policy}
        else:  # headers may also be a list of (name, value) pairs
            headers = [*headers, ("cache-control", policy)]
        return {**response, "headers": headers}

    return add_cache_control


async def now(request: Request) -> Response:
    return json_response({"time": datetime.now(timezone.utc).isoformat(timespec="seconds")})


app = build_server(
    apply_middleware(
        wrap_gzip(),  # outermost: compresses the files and the API's answers alike
        wrap_cache_control,
        wrap_index,
        wrap_static("static", root_path=HERE),  # files first: no routing needed for them
        wrap_routes([("/api/time", ["GET"], now)]),
    )(standard_not_found)
)


async def interrupted() -> None:
    """Returns at the first Ctrl+C (SIGINT) or SIGTERM: serve's cue to shut down gracefully."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            return


async def main() -> None:
    await serve(app, port=int(os.environ.get("PORT", "8000")), shutdown_trigger=interrupted)


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
