"""What hypercorn runs under ``serve``, and how ``serve`` winds it down.

``Relay`` stands between hypercorn and the app: it counts the app's HTTP and websocket calls,
so that a shutdown knows when the app has nothing left to do, and answers hypercorn's lifespan
with a stand-in, since ``serve`` runs the app's own lifespan around hypercorn
(``_lifespan_driver``). ``wind_down`` is the order of a shutdown: the app first, then
hypercorn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from ._failures import call_app
from ._types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from hypercorn.config import Config

#: How much longer than its grace hypercorn may take to wind down before it is cancelled.
MARGIN = 2.0


class Relay:
    """The app as hypercorn sees it: each HTTP and websocket call is counted, so that a
    shutdown knows when the app has nothing left to do, and the lifespan is a stand-in,
    since ``serve`` runs the app's own lifespan around hypercorn.

    hypercorn keeps a closed websocket's ping task until its next ping is due (up to
    ``websocket_ping_interval``) and waits for such tasks at shutdown; once the count is zero,
    ``serve`` stops hypercorn instead of waiting for them.
    """

    __slots__ = ("app", "idle", "lifespan_scope", "running", "state")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self.running = 0
        self.idle: anyio.Event | None = None
        self.lifespan_scope = anyio.CancelScope()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        self.running += 1
        try:
            await call_app(self.app, scope, receive, send)
        finally:
            self.running -= 1
            if not self.running and self.idle is not None:
                self.idle.set()

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        with self.lifespan_scope:  # cancelled when serve stops hypercorn early
            message = await receive()
            if message["type"] == "lifespan.startup":
                state = scope.get("state")
                if state is not None:  # copied into each request's scope by hypercorn
                    state.update(self.state)
                await send({"type": "lifespan.startup.complete"})
                message = await receive()
            if message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})

    async def wait_idle(self) -> None:
        while self.running:
            self.idle = anyio.Event()
            await self.idle.wait()


#: How long hypercorn has to flush what the app sent and close its connections, once the app
#: has nothing left running: what is left then is idle keep-alive connections and ping timers.
_LINGER = 0.25


async def wind_down(
    app: ASGIApp,
    relay: Relay,
    config: Config,
    stop: anyio.Event,
    finished: anyio.Event,
    server_scope: anyio.CancelScope,
) -> None:
    """Stops the app first, then hypercorn: in-flight calls get the grace period to finish,
    then hypercorn gets ``_LINGER`` to close its connections, and is cancelled after that."""
    begin = getattr(app, "begin_shutdown", None)
    if begin is not None:  # a shallot app: refuse new websockets, close open ones (1001)
        begin()
    with anyio.move_on_after(config.graceful_timeout):
        await relay.wait_idle()
    # hypercorn reads its grace period once stopped: nothing of the app's is left to wait for.
    config.graceful_timeout = _LINGER
    stop.set()
    with anyio.move_on_after(_LINGER + MARGIN):
        await finished.wait()
    if not finished.is_set():  # a call that ignores cancellation, or a stuck connection
        relay.lifespan_scope.cancel()
        server_scope.cancel()
        with anyio.move_on_after(MARGIN):
            await finished.wait()
