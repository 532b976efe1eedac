"""``@websocket``: turns an async generator (or coroutine) function into a shallot handler.

The decorated function is an ordinary handler: middlewares and routing see it like any other.
Called with a websocket request, it returns a takeover callable that performs the handshake
(``on_connect``) and then runs the connection on its own task group (``_taskgroup``).
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, overload

from ._checks import WEBSOCKET_FUNCTION, positive
from ._errors import WSDisconnect
from ._lifespan import AppTakeover
from ._receiver import JSONReceiver, Receiver
from ._taskgroup import Connection
from ._types import (
    ConnectHook,
    Handler,
    HandlerResult,
    Hook,
    LegacyHook,
    Receive,
    Request,
    Send,
    WSHandler,
)
from ._watch import Watch
from ._ws_handshake import handshake, refuse_when_full
from ._ws_limits import Limits, Seats
from .response import text

__all__ = ["JSONReceiver", "Receiver", "WSDisconnect", "websocket"]  # WSDisconnect: its 2.0 home

logger = logging.getLogger("shallot")

_MIB = 1024 * 1024


@overload
def websocket(func: WSHandler, /) -> Handler: ...


@overload
def websocket(
    *,
    on_connect: ConnectHook | None = None,
    on_disconnect: Hook | LegacyHook | None = None,
    on_close: Hook | LegacyHook | None = None,
    max_queue: int = 32,
    max_queue_bytes: int = _MIB,
    max_message_size: int = _MIB,
    disconnect_timeout: float = 0.5,
    close_timeout: float = 1.0,
    send_timeout: float = 10.0,
    watch_interval: float = 0.1,
    push_only_after: float = 2.0,
    idle_timeout: float | None = None,
    max_connections: int | None = None,
    max_rate: float | None = None,
    max_burst: int | None = None,
    json: bool = False,
) -> Callable[[WSHandler], Handler]: ...


def websocket(
    func: WSHandler | None = None,
    /,
    *,
    on_connect: ConnectHook | None = None,
    on_disconnect: Hook | LegacyHook | None = None,
    on_close: Hook | LegacyHook | None = None,
    max_queue: int = 32,
    max_queue_bytes: int = _MIB,
    max_message_size: int = _MIB,
    disconnect_timeout: float = 0.5,
    close_timeout: float = 1.0,
    send_timeout: float = 10.0,
    watch_interval: float = 0.1,
    push_only_after: float = 2.0,
    idle_timeout: float | None = None,
    max_connections: int | None = None,
    max_rate: float | None = None,
    max_burst: int | None = None,
    json: bool = False,
) -> Handler | Callable[[WSHandler], Handler]:
    """Makes a websocket handler of ``func(scope, receiver, *route_args)``, an async generator
    that yields ``ws_send(...)``/``ws_close(...)`` messages, or a coroutine function whose
    return value (a message or None) is sent before closing.

    ``on_connect(scope)`` returns ``ws_accept(...)``, ``ws_close()`` (the client sees 403) or an
    HTTP response dict (sent as the handshake's answer where the server allows it, else 403);
    by default every connection is accepted. ``on_disconnect(scope)`` runs when the client
    left while the handler ran; ``on_close(scope)`` whenever an accepted connection ends.

    Flow control: at most ``max_queue`` messages and ``max_queue_bytes`` bytes wait for the
    handler; a message over ``max_message_size`` bytes closes with 1009. After the client
    leaves, a handler that is neither reading nor yielding is cancelled after
    ``disconnect_timeout`` seconds. After a server-side close the client's close is awaited
    ``close_timeout`` seconds; one send may take ``send_timeout`` seconds (on hypercorn's trio
    worker, ``serve``'s ``tcp_user_timeout`` instead: a send there cannot be cancelled). While
    the handler reads, it reads from the server directly; once it has been away from its
    receiver for ``watch_interval`` seconds, shallot reads on its behalf (into the bounded
    queue), which is how a disconnect is noticed however the handler is busy. A full queue holds
    the client back (nothing is lost), except for a handler that has not read at all
    ``push_only_after`` seconds into the connection: that one is pure server push, and what does
    not fit is dropped (``receiver.dropped`` counts it) so the client's disconnect is still
    seen.

    Limits (all off by default, issue 14): ``idle_timeout`` closes with 1001 a connection whose
    client sent nothing for that many seconds (checked once per ``watch_interval``);
    ``max_connections`` refuses handshakes over that many open connections of this endpoint
    in one app with 503 (1013 after accept where the server cannot answer a handshake with an
    HTTP response); ``max_rate`` messages per second with bursts of ``max_burst`` (default: one
    second's worth) closes a faster client with 1008. ``json=True`` gives the handler a
    ``JSONReceiver``: each message parsed as JSON; what is not JSON text closes with 1007.

    Raises:
        TypeError: ``func`` is not an async generator or coroutine function, a hook is not
            callable, or ``json`` is not a bool.
        ValueError: a limit is not positive, or ``max_burst`` is given without ``max_rate``.
    """
    for hook_name, hook in (
        ("on_connect", on_connect),
        ("on_disconnect", on_disconnect),
        ("on_close", on_close),
    ):
        if hook is not None and not callable(hook):
            raise TypeError(f"{hook_name} {hook!r} is not callable")
    on_disconnect, on_close = _takes_scope(on_disconnect), _takes_scope(on_close)
    if not isinstance(json, bool):
        raise TypeError(f"json must be True or False, not {json!r}")
    if max_burst is not None and max_rate is None:
        raise ValueError("max_burst needs max_rate: it is the size of the rate limit's bursts")
    options = Limits(
        max_queue=positive("max_queue", max_queue, whole=True),
        max_queue_bytes=positive("max_queue_bytes", max_queue_bytes, whole=True),
        max_message_size=positive("max_message_size", max_message_size, whole=True),
        disconnect_timeout=positive("disconnect_timeout", disconnect_timeout),
        close_timeout=positive("close_timeout", close_timeout),
        send_timeout=positive("send_timeout", send_timeout),
        watch_interval=positive("watch_interval", watch_interval),
        push_only_after=positive("push_only_after", push_only_after),
        idle_timeout=_optional(positive, "idle_timeout", idle_timeout),
        max_connections=_optional(positive, "max_connections", max_connections, whole=True),
        max_rate=_optional(positive, "max_rate", max_rate),
        max_burst=_optional(positive, "max_burst", max_burst, whole=True),
    )
    receiver_type = JSONReceiver if json else Receiver

    def decorate(function: WSHandler) -> Handler:
        if inspect.isasyncgenfunction(function):
            start = function
        elif inspect.iscoroutinefunction(function):
            start = functools.partial(_coroutine_messages, function)
        else:
            raise TypeError(
                f"@websocket needs an async generator or coroutine function, not {function!r}"
            )
        endpoint = _Endpoint(
            start,
            getattr(function, "__qualname__", repr(function)),
            options,
            on_connect,
            on_disconnect,
            on_close,
            receiver_type,
        )

        @functools.wraps(function)
        async def handler(request: Request, *route_args: Any) -> HandlerResult:
            if request.get("type") != "websocket":
                return text(
                    "Upgrade Required: this is a websocket endpoint",
                    status=426,
                    headers={"upgrade": "websocket", "connection": "Upgrade"},
                )
            return _Takeover(endpoint, request, route_args)

        setattr(handler, WEBSOCKET_FUNCTION, function)  # routes check how they will call it
        return handler

    if func is not None:
        return decorate(func)
    return decorate


class _Endpoint:
    """What ``@websocket`` fixed once: the function, its name and options, the hooks."""

    __slots__ = (
        "name",
        "on_close",
        "on_connect",
        "on_disconnect",
        "options",
        "receiver_type",
        "start",
    )

    def __init__(
        self,
        start: Callable[..., AsyncGenerator[Any, None]],
        name: str,
        options: Limits,
        on_connect: ConnectHook | None,
        on_disconnect: Hook | None,
        on_close: Hook | None,
        receiver_type: type[Receiver] = Receiver,
    ) -> None:
        self.start = start
        self.name = name
        self.options = options
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect
        self.on_close = on_close
        self.receiver_type = receiver_type


class _Takeover(AppTakeover):
    """What a ``@websocket`` handler returns for a websocket request: the raw-takeover
    callable (SPEC §1) that runs the connection. A slotted object, not a closure, and its
    call hands back ``Connection.run`` itself: an idle connection's memory is mostly the
    frames it sits in. The app (``_asgi``) sets ``app`` (its state: the open connections for
    graceful shutdowns, the watches) before calling it."""

    __slots__ = ("endpoint", "request", "route_args")

    def __init__(self, endpoint: _Endpoint, request: Request, route_args: tuple[Any, ...]) -> None:
        self.app = None
        self.endpoint = endpoint
        self.request = request
        self.route_args = route_args

    def __call__(self, receive: Receive, send: Send) -> Awaitable[None]:
        app = self.app
        # max_connections is counted per app; called outside build_server there is none, and
        # nothing is counted (never a process-global count)
        if self.endpoint.options.max_connections is not None and app is not None:
            return self._seated(app.seats, receive, send)
        return self._run(receive, send)

    async def _seated(self, seats: Seats, receive: Receive, send: Send) -> None:
        """Runs the connection in one of the endpoint's ``max_connections`` seats of this app,
        given back however it ends (a refused or cancelled handshake, a failure included); with
        none free, refuses the handshake (issue 14)."""
        endpoint = self.endpoint
        if not seats.take(endpoint, endpoint.options.max_connections or 0):
            logger.info(
                "websocket handshake to %s refused: %s has max_connections=%s open",
                self.request.get("path"),
                endpoint.name,
                endpoint.options.max_connections,
            )
            await refuse_when_full(self.request, receive, send)
            return
        try:
            await self._run(receive, send)
        finally:
            seats.give_back(endpoint)

    def _run(self, receive: Receive, send: Send) -> Awaitable[None]:
        endpoint, request, app = self.endpoint, self.request, self.app
        limits = endpoint.options
        if app is None:  # called outside build_server: the connection watches itself
            watch, registry = Watch(limits.watch_interval, None), None
        else:
            watch, registry = app.watches.watch_for(limits.watch_interval), app.connections
        connection = Connection(request, receive, send, limits, watch)
        return connection.run(
            handshake(request, receive, send, endpoint.on_connect),
            endpoint,
            endpoint.receiver_type(connection),
            self.route_args,
            registry,
        )


def _optional(check: Callable[..., Any], name: str, value: Any, **options: Any) -> Any:
    """Returns ``value`` checked by ``check``, or None: the limit is off."""
    return None if value is None else check(name, value, **options)


def _takes_scope(hook: Hook | LegacyHook | None) -> Hook | None:
    """Returns ``hook``, adapted when it takes no argument: shallot 2.0 called
    ``on_disconnect()`` without the scope, and such hooks keep working."""
    if hook is None:
        return None
    try:
        parameters = inspect.signature(hook).parameters.values()
    except (TypeError, ValueError):  # no signature to read: assume it takes the scope
        return hook  # type: ignore[return-value]
    if any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in parameters
    ):
        return hook  # type: ignore[return-value]
    no_argument_hook: Callable[[], Any] = hook  # type: ignore[assignment]

    async def call_without_scope(scope: Request) -> Any:
        return await no_argument_hook()

    return call_without_scope


async def _coroutine_messages(
    function: Callable[..., Any], scope: Request, receiver: Receiver, *route_args: Any
) -> AsyncGenerator[Any, None]:
    result = await function(scope, receiver, *route_args)
    if result is not None:
        yield result
