"""Hello world: one handler, no middleware, served with ``shallot.serve``.

Run it with ``python examples/hello.py`` (add ``trio`` to run on trio) and open
http://127.0.0.1:8000; Ctrl+C stops it gracefully. Or serve it with hypercorn:
``hypercorn examples.hello:app``. The port is 8000 unless ``$PORT`` says otherwise.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import anyio

from shallot import build_server, serve
from shallot.response import text


async def hello(request: dict[str, Any]) -> dict[str, Any]:
    """Answers every request, whatever its path or method."""
    return text(f"Hello, world! You asked for {request['method']} {request['path']}\n")


app = build_server(hello)


async def interrupted() -> None:
    """Returns at the first Ctrl+C (SIGINT) or SIGTERM: serve's cue to shut down gracefully."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            return


async def main() -> None:
    await serve(app, port=int(os.environ.get("PORT", "8000")), shutdown_trigger=interrupted)


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio")
