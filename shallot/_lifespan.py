"""The app's lifetime: ASGI ``lifespan`` startup and shutdown around one exit stack.

State lives in one ``AppState`` per built app (no module globals, SPEC §2), so one server at a
time runs an app's lifespan: a second one, while the first still runs it, is refused at startup
(two servers would share one life, and the first to stop would close the other's resources).
Startup enters the user's ``lifespan`` context manager, then calls ``on_start``; shutdown calls
``on_stop``, then leaves the context manager. The context spans the protocol as one
``async with`` in one task, so task groups and cancel scopes opened inside it nest properly
(anyio and trio require it). HTTP and websocket requests that arrive while startup runs wait
for it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any, TypeAlias

import anyio

from ._errors import ASGIProtocolError, single_exception
from ._types import Hook, Receive, Request, Scope, Send, StartHook
from ._watch import AppWatches
from ._ws_limits import Seats

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

logger = logging.getLogger("shallot")


LifespanFactory: TypeAlias = Callable[[], AbstractAsyncContextManager[Any]]


class Connections(set[Any]):
    """The open websocket connections and ``sse()`` streams of one app: each has
    ``going_away()``, which ``begin_shutdown`` calls. ``closing`` is set when the app begins
    shutting down, so a connection whose handshake was still in progress then (an
    ``on_connect`` awaiting something) closes with 1001 as soon as it is accepted, and a stream
    that starts then ends at once."""

    closing = False


class AppTakeover:
    """Base of the raw-takeover callables ``@websocket`` handlers return (SPEC §1): the app
    hands it its state (``app``) before calling it, for graceful shutdown and the watches."""

    __slots__ = ("app",)

    app: AppState | None


class AppState:
    """Per-app state: the config handed to requests and whether startup has finished."""

    __slots__ = (
        "_started",
        "closing",
        "config",
        "connections",
        "failed",
        "living",
        "ready",
        "seats",
        "serving",
        "watches",
    )

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}
        self.ready = True  # no lifespan at all (a bare ASGI call): requests proceed at once
        self.failed = False
        self.serving = True  # ready and not failed: the one check on the hot path
        self.closing = False  # shutting down: new websockets are refused
        self.living = False  # a lifespan call is running (one at a time: run_lifespan)
        self.connections = Connections()  # open websocket connections (_taskgroup)
        self.watches = AppWatches()  # their timers, run in the lifespan task group
        self.seats = Seats()  # connections per endpoint, for max_connections
        self._started: anyio.Event | None = None

    def begin_shutdown(self) -> None:
        """Starts a graceful shutdown: new websocket handshakes get 503, open websockets are
        closed with 1001 (their ``on_close`` runs), ``sse()`` streams end. HTTP requests are
        still answered."""
        self.closing = self.connections.closing = True
        for connection in list(self.connections):
            connection.going_away()

    def _begin_startup(self) -> None:
        """A new life of the app begins (``serve`` again, or a ``TestClient`` after it): what
        the last one left (its config, a shutdown's refusal of new websockets) must not outlive
        it. ``seats`` stay: they count connections, each gives its seat back when it ends. The
        watches are restarted by ``run_lifespan``."""
        self.ready = self.serving = self.failed = self.closing = False
        self.config = {}
        # A fresh set: a connection of the last life keeps the closing one it joined.
        self.connections = Connections()
        self._started = anyio.Event()

    def _end_startup(self, failed: bool) -> None:
        self.failed = failed
        self.ready = True
        self.serving = not failed
        if self._started is not None:
            self._started.set()

    async def wait_ready(self) -> None:
        """Waits until a startup in progress has finished."""
        if self._started is not None:
            await self._started.wait()


def _merge(config: dict[str, Any], extra: Any, source: str) -> None:
    if extra is None:
        return
    if not isinstance(extra, dict):
        raise TypeError(f"{source} gave {extra!r}; it must give a dict or None")
    config.update(extra)


def _describe(error: BaseException) -> str:
    # A task group in the user's lifespan context wraps a lone error; report the error itself.
    error = single_exception(error)
    return f"{type(error).__name__}: {error}"


#: Why a second lifespan of an app that is already running is refused (``run_lifespan``).
ALREADY_RUNNING = (
    "this app is already running under another server; call build_server again for a second "
    "app to serve the same handler twice"
)


async def run_lifespan(
    state: AppState, receive: Receive, send: Send, protocol: Callable[[], Awaitable[None]]
) -> None:
    """Runs one life of the app (``protocol``: ``run_protocol`` with the lifespan call's
    arguments) inside the app's own task group, which hosts the websocket watches (``_watch``)
    for as long as the app runs.

    A second lifespan while one runs (a second ``serve`` of the same app, or a ``TestClient``
    block on a served app) gets ``lifespan.startup.failed``: the app has one state, and the
    first server to stop would close the other's resources and connections.

    Raises:
        ASGIProtocolError: the server broke the lifespan protocol.
    """
    if state.living:
        await _refuse(receive, send)
        return
    state.living = True  # no await since the check: no other lifespan got in between
    try:
        async with anyio.create_task_group() as group:
            state.watches.start(group.start_soon)
            try:
                await protocol()
            finally:
                state.watches.stop()
                group.cancel_scope.cancel()
    except BaseExceptionGroup as error:  # only the protocol's own task raises: unwrap it
        raise single_exception(error) from None
    finally:
        state.living = False


async def _startup(receive: Receive) -> None:
    """Receives the lifespan's first message, which must be its startup.

    Raises:
        ASGIProtocolError: it is something else.
    """
    message = await receive()
    if message["type"] != "lifespan.startup":
        raise ASGIProtocolError(f"lifespan began with {message['type']!r}, not lifespan.startup")


async def _refuse(receive: Receive, send: Send) -> None:
    await _startup(receive)
    logger.error("startup refused: %s", ALREADY_RUNNING)
    await send({"type": "lifespan.startup.failed", "message": ALREADY_RUNNING})


async def run_protocol(
    state: AppState,
    scope: Scope,
    receive: Receive,
    send: Send,
    on_start: StartHook | None,
    on_stop: Hook | None,
    lifespan: LifespanFactory | None,
) -> None:
    """Runs the ASGI lifespan protocol for one app (ASGI lifespan spec 2.0).

    The user's ``lifespan`` context is entered with a plain ``async with`` that spans the
    whole protocol, so a task group inside it nests properly: when one of its background
    tasks fails, the error is logged and reported at shutdown, and a cancellation by the
    server runs the context's exit like any other ``async with`` would.
    """
    hook_scope: Request = scope  # type: ignore[assignment]  # servers pass a dict
    await _startup(receive)
    state._begin_startup()
    phase = "startup"
    try:
        async with AsyncExitStack() as stack:
            config: dict[str, Any] = {}
            if lifespan is not None:
                _merge(config, await stack.enter_async_context(lifespan()), "lifespan")
            if on_start is not None:
                _merge(config, await on_start(hook_scope), "on_start")
            state.config = config
            state._end_startup(failed=False)
            phase = "running"
            await send({"type": "lifespan.startup.complete"})
            await _wait_shutdown(receive)
            phase = "shutdown"
            if on_stop is not None:
                await on_stop(hook_scope)
    except ASGIProtocolError:  # the server's mistake, not the app's: no lifespan message fits
        raise
    except Exception as error:
        if phase == "startup":
            logger.exception("startup failed")
            state._end_startup(failed=True)
            await send({"type": "lifespan.startup.failed", "message": _describe(error)})
            return
        if phase == "running":  # a background task of the lifespan context failed
            logger.exception("the lifespan context failed while the app was running")
            await _wait_shutdown(receive)
        else:
            logger.exception("shutdown failed")
        await send({"type": "lifespan.shutdown.failed", "message": _describe(error)})
        return
    finally:
        if not state.ready:  # cancelled by the server during startup: refuse requests
            state._end_startup(failed=True)
    await send({"type": "lifespan.shutdown.complete"})


async def _wait_shutdown(receive: Receive) -> None:
    message = await receive()
    if message["type"] != "lifespan.shutdown":
        raise ASGIProtocolError(f"expected lifespan.shutdown, got {message['type']!r}")
