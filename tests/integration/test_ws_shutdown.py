"""Open websockets when hypercorn shuts down (SIGINT), asyncio and trio workers (SPEC §4).

What hypercorn 0.18 does on SIGINT, with either worker: it stops accepting, lets open
connections run for ``graceful_timeout`` (3 s by default, 1 s here), then cancels what is left;
``lifespan.shutdown`` comes only after that, so an app learns of the shutdown by being cancelled.
shallot then sends 1001 ("server shutting down") from its shielded cleanup, and both workers
still let that frame out: the connection's socket is closed only after the app task ended.
"""

from __future__ import annotations

import uuid

import anyio
import pytest

from .server import run_hypercorn
from .test_websocket_over_hypercorn import APP, closed_by_server, ws_connect

pytestmark = pytest.mark.slow  # real processes and sockets; still part of the default run

GRACEFUL_TIMEOUT = 1  # whole seconds: the CLI takes an int


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """The ``websockets`` client used here is its asyncio one."""
    return "asyncio"


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def worker_class(request: pytest.FixtureRequest) -> str:
    """hypercorn's ``--worker-class``: the one thing that varies."""
    return str(request.param)


async def test_shutdown_closes_open_websockets_with_1001_and_runs_on_close(
    worker_class: str,
) -> None:
    connection_id = uuid.uuid4().hex
    extra_args = ["--graceful-timeout", str(GRACEFUL_TIMEOUT)]
    async with run_hypercorn(APP, worker_class=worker_class, extra_args=extra_args) as server:
        with anyio.fail_after(10):
            async with ws_connect(server, f"/hooks/{connection_id}") as ws:
                await ws.send("ping")
                assert await ws.recv() == "ping"
                interrupted = anyio.current_time()
                server.interrupt()
                code, reason = await closed_by_server(ws)
                closed_after = anyio.current_time() - interrupted
        with anyio.fail_after(15):
            assert await server.stop() == 0
    logs = server.logs
    print(f"[{worker_class}] client saw {code} {reason!r} {closed_after:.2f}s after SIGINT")
    assert (code, reason) == (1001, "server shutting down")
    assert closed_after >= GRACEFUL_TIMEOUT  # hypercorn waited before it cancelled
    on_close = f"ws {connection_id} on_close"
    assert f"ws {connection_id} finally" in logs
    assert on_close in logs
    assert f"ws {connection_id} on_disconnect" not in logs  # the server ended it
    assert logs.index(on_close) < logs.index("lifespan shutdown")
    assert "Error in ASGI" not in logs
