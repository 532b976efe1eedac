"""``serve``: runs an app on hypercorn inside the caller's anyio program, on its backend.

This is the one place in shallot that picks a backend by name: hypercorn has one ``serve`` for
asyncio and one for trio. The listening socket is bound here, before hypercorn starts, so that
``port=0`` works and the caller learns the address through ``task_status``.

``serve`` runs the app's lifespan itself, around hypercorn (which gets a stand-in), so that it
can stop hypercorn as soon as the app has nothing left to do and still run the app's shutdown
last (``_relay``). Shutdown, whether the caller's scope is cancelled or ``shutdown_trigger``
returns, is graceful: the app is told first (a shallot app refuses new websockets with 503 and
closes open ones with 1001); its calls in flight get ``grace_period`` to finish; then hypercorn
stops accepting and gets a moment to close its connections (it would otherwise wait for the
ping timers of closed websockets), and the app's lifespan shutdown runs.

Dead peers and clients that stop reading (issues 13 and 14): ASGI shows an app no pongs and
hypercorn has no pong timeout, so ``serve`` combines two things that exist. hypercorn pings
every websocket (``websocket_ping_interval``, 20 s), so a vanished peer leaves data
unacknowledged; the kernel bound ``TCP_USER_TIMEOUT``, set on the listening socket and
inherited by every accepted one (Linux), drops a connection whose data stays unacknowledged,
or unsent behind a zero window, for longer than ``tcp_user_timeout``. hypercorn then reports
the disconnect to the app. It is also what ends a stuck send on hypercorn's trio worker, whose
sends cannot be cancelled from the app.
"""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.abc import TaskStatus

from ._checks import positive
from ._errors import single_exception
from ._lifespan_driver import LifespanDriver, LifespanError
from ._relay import Relay, wind_down
from ._types import ASGIApp

if TYPE_CHECKING:
    from hypercorn.config import Config

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

logger = logging.getLogger("shallot")

#: Defaults of the liveness options (seconds): uvicorn pings every 20 s too.
PING_INTERVAL = 20.0
TCP_USER_TIMEOUT = 40.0


async def serve(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    grace_period: float = 5.0,
    shutdown_trigger: Callable[[], Awaitable[Any]] | None = None,
    websocket_ping_interval: float | None = PING_INTERVAL,
    tcp_user_timeout: float | None = TCP_USER_TIMEOUT,
    task_status: TaskStatus[tuple[str, int]] = anyio.TASK_STATUS_IGNORED,
    **hypercorn_options: Any,
) -> None:
    """Serves ``app`` with hypercorn on ``host:port`` until the caller's scope is cancelled
    or ``shutdown_trigger()`` returns, then shuts down gracefully within ``grace_period``.

    Use it with ``await task_group.start(functools.partial(serve, app, port=0))`` to get the
    bound ``(host, port)`` back (``start`` passes no keyword arguments). Other keyword
    arguments set hypercorn ``Config`` attributes (``keep_alive_timeout``, ``root_path``, ...).

    hypercorn pings each websocket every ``websocket_ping_interval`` seconds, and the kernel
    drops a connection whose sent data stays unacknowledged (or unsent because the client
    stopped reading) for ``tcp_user_timeout`` seconds (``TCP_USER_TIMEOUT``, Linux only;
    ignored elsewhere). ``None`` turns either off.

    Raises:
        TypeError: an option is not a hypercorn ``Config`` attribute.
        ValueError: ``websocket_ping_interval`` or ``tcp_user_timeout`` is not positive, or
            ``grace_period`` is neither positive nor zero.
        OSError: the address cannot be bound.
        ImportError: hypercorn is not installed (the ``hypercorn`` extra).
    """
    config = _configure(hypercorn_options, websocket_ping_interval, tcp_user_timeout)
    config.graceful_timeout = positive("grace_period", grace_period, unit="seconds", or_zero=True)
    listener = _listen(host, port, config.backlog, tcp_user_timeout)
    address = listener.getsockname()[:2]
    config.bind = [f"fd://{listener.fileno()}"]
    hypercorn_serve = _pick_hypercorn()

    relay = Relay(app)
    lifespan = LifespanDriver(app)
    stop, finished, requested = anyio.Event(), anyio.Event(), anyio.Event()
    server_scope = anyio.CancelScope(shield=True)  # the caller's cancellation starts a shutdown

    async def run_server() -> None:
        listener.detach()  # hypercorn owns the socket from here on
        try:
            with server_scope:
                await hypercorn_serve(relay, config, shutdown_trigger=stop.wait)
        except Exception:
            if not server_scope.cancel_called:
                raise
            # Cancelled by serve itself (a connection held its wind-down up): that is how the
            # fallback ends. hypercorn's asyncio worker, cancelled while it waits for its
            # connections, raises InvalidStateError from its cleanup instead of the cancel.
            logger.debug("hypercorn raised once serve had cancelled it", exc_info=True)
        finally:
            finished.set()
            requested.set()

    async def watch_trigger() -> None:
        assert shutdown_trigger is not None
        await shutdown_trigger()
        requested.set()

    failure: str | None = None
    try:
        async with anyio.create_task_group() as tg:
            try:
                await _start(lifespan, tg, config.startup_timeout)  # before hypercorn accepts
                relay.state = lifespan.state
                tg.start_soon(run_server)
                if shutdown_trigger is not None:
                    tg.start_soon(watch_trigger)
                logger.info("serving on http://%s:%d", address[0], address[1])
                task_status.started((address[0], address[1]))
                try:
                    await requested.wait()
                finally:
                    with anyio.CancelScope(shield=True):
                        await wind_down(app, relay, config, stop, finished, server_scope)
                        with anyio.move_on_after(config.shutdown_timeout) as stopping:
                            failure = await lifespan.stop()  # on_stop, once nothing else runs
                        if stopping.cancelled_caught:
                            failure = f"did not finish within {config.shutdown_timeout}s"
            finally:
                lifespan.close()
                listener.close()  # unless hypercorn took it over (a failed startup)
                # However the wind-down ended (a second Ctrl+C on trio raises into it), hypercorn
                # must not outlive serve: its scope is shielded from tg's cancellation.
                stop.set()
                relay.lifespan_scope.cancel()
                server_scope.cancel()
                tg.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise single_exception(group) from None
    if failure is not None:
        raise LifespanError(f"lifespan shutdown failed: {failure}")


def _configure(
    options: dict[str, Any], ping_interval: float | None, user_timeout: float | None
) -> Config:
    from hypercorn.config import Config

    config = Config()
    for name, value in options.items():
        if name.startswith("_") or not hasattr(config, name):
            raise TypeError(f"{name!r} is not a hypercorn Config option")
        if name in ("bind", "insecure_bind", "quic_bind", "graceful_timeout", "workers"):
            raise TypeError(
                f"{name!r} is serve's to set: use host=, port= and grace_period=, and run "
                "several copies of the program for several processes"
            )
        setattr(config, name, value)
    for name, value in (
        ("websocket_ping_interval", ping_interval),
        ("tcp_user_timeout", user_timeout),
    ):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e6
        ):
            raise ValueError(f"{name} must be a positive number of seconds or None, not {value!r}")
    config.websocket_ping_interval = ping_interval
    return config


async def _start(lifespan: LifespanDriver, tg: anyio.abc.TaskGroup, seconds: float) -> None:
    """Runs the app's startup (shielded: a cancelled serve still runs its shutdown)."""
    with anyio.move_on_after(seconds) as scope:
        await lifespan.start(tg, shield=True)
    if scope.cancelled_caught:
        raise LifespanError(f"lifespan startup did not finish within {seconds}s")


def _listen(host: str, port: int, backlog: int, user_timeout: float | None) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        option = getattr(socket, "TCP_USER_TIMEOUT", None)  # Linux only
        if user_timeout is not None and option is not None:
            # Accepted sockets inherit it (tests/test_serve_sockets.py checks served ones).
            listener.setsockopt(socket.IPPROTO_TCP, option, max(1, round(user_timeout * 1000)))
        listener.bind((host, port))
        listener.listen(backlog)
    except OSError:
        listener.close()
        raise
    return listener


def _pick_hypercorn() -> Callable[..., Awaitable[None]]:
    # anyio names the running backend's class (AsyncIOBackend, TrioBackend), not its name.
    if "trio" in anyio.lowlevel.current_token().backend_class.__name__.lower():
        from hypercorn.trio import serve as trio_serve

        return trio_serve
    from hypercorn.asyncio import serve as asyncio_serve

    _drop_cancelled_connection_reports()
    return asyncio_serve


#: asyncio's report of a connection task that raised (``asyncio.streams``).
_CONNECTION_TASK_FAILED = "Unhandled exception in client_connected_cb"


def _drop_cancelled_connection_reports() -> None:
    """Keeps the asyncio loop from reporting hypercorn's cancelled connection tasks as errors.

    Stopping hypercorn cancels the tasks of connections still open (idle keep-alive ones, and
    closed websockets whose ping timer is pending). On some Python versions (3.11.7 among them)
    asyncio's stream server then calls ``task.exception()`` on the cancelled task, which raises
    ``CancelledError`` inside a callback, and the loop logs it with a traceback, as if it were a
    crash. And when ``serve`` has to cancel hypercorn itself (a connection to a client that
    stopped reading holds it up), the ``gather`` of its connection tasks ends later with that
    ``CancelledError``, unretrieved, and the loop reports "_GatheringFuture exception was never
    retrieved". And a connection the kernel dropped (``tcp_user_timeout``: the client stopped
    reading) fails hypercorn's asyncio close with ``TimeoutError``, which its connection task
    does not catch: the loop would log a traceback per such client, for what ``serve`` set up
    on purpose; it goes to the debug log. Only these three reports are dropped; everything
    else reaches the previous handler.
    """
    import asyncio  # the asyncio backend is running: this is its own loop's business

    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    if getattr(previous, "_shallot_filter", False):
        return  # already installed on this loop

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if isinstance(error, asyncio.CancelledError) and (
            "StreamReaderProtocol.connection_made" in repr(context.get("handle"))
            or type(context.get("future")).__name__ == "_GatheringFuture"
        ):
            return
        if isinstance(error, OSError) and context.get("message") == _CONNECTION_TASK_FAILED:
            logger.debug("a connection's socket failed as it closed: %r", error)
            return
        if previous is None:
            loop.default_exception_handler(context)
        else:
            previous(loop, context)

    handler._shallot_filter = True  # type: ignore[attr-defined]
    loop.set_exception_handler(handler)
