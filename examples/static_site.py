"""A static site: ``examples/static/`` as the pages, ``examples/assets/`` under ``/assets``.

``wrap_static`` answers GET and HEAD for the files in a folder with an ``etag`` and a
``last-modified`` header, and ``304 Not Modified`` when the browser's copy is current. A folder
is answered with its ``index.html`` (``/`` and ``/docs/``), and ``/docs`` is redirected to
``/docs/``. The pages get ``cache-control: no-cache`` (revalidate each time, which costs a
``304`` without a body while they are unchanged). The assets are mounted under the URL prefix
``/assets``; the stylesheet's name carries a hash of its content, so with ``fingerprinted=True``
browsers may keep it for a year. ``wrap_gzip`` compresses what is worth compressing. One API
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
from shallot.types import Request, Response

HERE = os.path.dirname(os.path.abspath(__file__))


async def now(request: Request) -> Response:
    return json_response({"time": datetime.now(timezone.utc).isoformat(timespec="seconds")})


app = build_server(
    apply_middleware(
        wrap_gzip(),  # outermost: compresses the files and the API's answers alike
        # files first: no routing needed for them
        wrap_static("static", root_path=HERE, cache_control="no-cache"),
        wrap_static(os.path.join(HERE, "assets"), prefix="/assets", fingerprinted=True),
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
