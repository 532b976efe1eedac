"""``serve``: runs an app on hypercorn inside the caller's anyio program, on its backend.

This is the one place in shallot that picks a backend by name: hypercorn has one ``serve`` for
asyncio and one for trio. The listening socket is bound here, before hypercorn starts, so that
``port=0`` works and the caller learns the address through ``task_status``.

Shutdown, whether the caller's scope is cancelled or ``shutdown_trigger`` returns, is graceful:
the app is told first (a shallot app refuses new websockets with 503 and closes open ones with
1001), then hypercorn stops accepting, lets in-flight requests finish within ``grace_period``,
runs the lifespan shutdown, and is cancelled if anything is still running after that.

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
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
from anyio.abc import TaskStatus

from ._types import ASGIApp

logger = logging.getLogger("shallot")

#: How much longer than the grace period hypercorn may take to wind down before it is cancelled.
_MARGIN = 2.0
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
        ValueError: ``websocket_ping_interval`` or ``tcp_user_timeout`` is not positive.
        OSError: the address cannot be bound.
        ImportError: hypercorn is not installed (the ``hypercorn`` extra).
    """
    from hypercorn.config import Config

    config = Config()
    for name, value in hypercorn_options.items():
        if name.startswith("_") or not hasattr(config, name):
            raise TypeError(f"{name!r} is not a hypercorn Config option")
        setattr(config, name, value)
    for name, value in (
        ("websocket_ping_interval", websocket_ping_interval),
        ("tcp_user_timeout", tcp_user_timeout),
    ):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e6
        ):
            raise ValueError(f"{name} must be a positive number of seconds or None, not {value!r}")
    config.websocket_ping_interval = websocket_ping_interval
    config.graceful_timeout = grace_period
    listener = _listen(host, port, config.backlog, tcp_user_timeout)
    address = listener.getsockname()[:2]
    config.bind = [f"fd://{listener.detach()}"]  # hypercorn owns the socket from here on
    hypercorn_serve = _pick_hypercorn()

    stop = anyio.Event()
    finished = anyio.Event()
    server_scope = anyio.CancelScope(shield=True)  # the caller's cancellation starts a shutdown

    async def run_server() -> None:
        try:
            with server_scope:
                await hypercorn_serve(app, config, shutdown_trigger=stop.wait)
        finally:
            finished.set()

    async def watch_trigger() -> None:
        assert shutdown_trigger is not None
        await shutdown_trigger()
        _begin_shutdown(app, stop)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run_server)
        if shutdown_trigger is not None:
            tg.start_soon(watch_trigger)
        logger.info("serving on http://%s:%d", address[0], address[1])
        task_status.started((address[0], address[1]))
        try:
            await finished.wait()
        finally:
            with anyio.CancelScope(shield=True):
                _begin_shutdown(app, stop)
                with anyio.move_on_after(grace_period + _MARGIN):
                    await finished.wait()
                server_scope.cancel()  # still running past the grace period: stop it
            tg.cancel_scope.cancel()


def _begin_shutdown(app: ASGIApp, stop: anyio.Event) -> None:
    if stop.is_set():
        return
    begin = getattr(app, "begin_shutdown", None)
    if begin is not None:  # a shallot app: refuse new websockets, close open ones (1001)
        begin()
    stop.set()


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

    return asyncio_serve
