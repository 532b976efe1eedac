"""The ASGI 3 entry point: ``build_server`` and the dispatch on ``scope["type"]``.

HTTP goes to ``_http``, lifespan to ``_lifespan``; a websocket request is turned into a request
dict and handed to the handler, which returns a takeover callable (a ``@websocket`` handler) or a
response dict, which denies the handshake.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import Any

from ._body import streams_body_of
from ._checks import check_handler, check_hook, check_lifespan, positive
from ._failures import log_raised, run_takeover
from ._http import SERVICE_UNAVAILABLE, serve_http
from ._lifespan import AppState, AppTakeover, LifespanFactory, run_lifespan, run_protocol
from ._origins import origin_check
from ._prepare import InvalidResponse, prepare
from ._request import Limits, build_request
from ._streaming import INTERNAL_ERROR
from ._types import ASGIApp, Handler, Hook, Receive, Response, Scope, Send, StartHook
from .response import text, ws_close

logger = logging.getLogger("shallot")

_MIB = 1024 * 1024


def _positive(name: str, value: Any) -> float:
    value = positive(name, value, unit="seconds")
    return math.inf if math.isinf(value) else float(value)


def _one_of(name: str, value: float | None, old_name: str, old_value: float | None) -> float:
    if value is not None and old_value is not None:
        raise TypeError(f"give {name} or its shallot 2.0 name {old_name}, not both")
    if value is None and old_value is None:
        return 30.0
    return value if value is not None else old_value  # type: ignore[return-value]


def build_server(
    handler: Handler,
    max_responde_timeout_s: float | None = None,
    max_receive_timeout_s: float | None = None,
    on_start: StartHook | None = None,
    on_stop: Hook | None = None,
    *,
    lifespan: LifespanFactory | None = None,
    max_body_size: int = 10 * _MIB,
    body_timeout: float | None = None,
    response_timeout: float | None = None,
    allowed_origins: str | Iterable[str] | None = None,
) -> ASGIApp:
    """Returns an ASGI 3 application that answers every request with ``handler``.

    ``on_start(scope)`` and ``on_stop(scope)`` run at lifespan startup and shutdown; what
    ``on_start`` returns becomes ``request["config"]``. ``lifespan`` is a factory of an async
    context manager whose body spans startup to shutdown and which yields config too.
    ``body_timeout`` (default 30 s) bounds how long a client may take to send its body (408
    after it), ``max_body_size`` (default 10 MiB) how large it may be (413 over it), and
    ``response_timeout`` (default 30 s) each send to a client that stopped reading (on
    hypercorn's trio worker a send cannot be cancelled: there ``serve``'s kernel bound,
    ``tcp_user_timeout``, ends it; docs/deployment.md, "Dead peers and stuck sends").
    ``max_responde_timeout_s`` and ``max_receive_timeout_s`` are shallot 2.0's names for the
    two timeouts, accepted in 2.0's positional order.

    A websocket handshake whose ``Origin`` is neither the app's own origin (scheme and
    ``Host`` of the request, as the middlewares left it) nor in ``allowed_origins`` (exact
    ``scheme://host[:port]`` origins, host names, ``*.example.com`` patterns) is refused with
    403 before ``on_connect`` runs; ``allowed_origins="*"`` turns the check off.

    Raises:
        TypeError: ``handler`` or a hook is not callable or certainly fails when called (an
            async generator without ``@websocket``, a ``lifespan`` without
            ``@asynccontextmanager``, the function ``apply_middleware(...)`` returned; see
            ``_checks``), or a timeout is given under both its 2.0 name and its new one.
        ValueError: a limit is not positive, or an allowed origin is malformed.
    """
    if not callable(handler):
        raise TypeError(f"handler {handler!r} is not callable")
    for name, hook in (("on_start", on_start), ("on_stop", on_stop), ("lifespan", lifespan)):
        if hook is not None and not callable(hook):
            raise TypeError(f"{name} {hook!r} is not callable")
    # what certainly fails when called is refused now rather than at the first request
    check_handler("build_server", handler)
    for name, hook in (("on_start", on_start), ("on_stop", on_stop)):
        if hook is not None:
            check_hook(name, hook)
    if lifespan is not None:
        check_lifespan(lifespan)
    body_timeout = _one_of(
        "body_timeout", body_timeout, "max_receive_timeout_s", max_receive_timeout_s
    )
    response_timeout = _one_of(
        "response_timeout", response_timeout, "max_responde_timeout_s", max_responde_timeout_s
    )
    if isinstance(max_body_size, bool) or not isinstance(max_body_size, int) or max_body_size < 0:
        raise ValueError(f"max_body_size must be a whole number of bytes, not {max_body_size!r}")
    limits = Limits(
        max_body_size,
        _positive("body_timeout", body_timeout),
        _positive("response_timeout", response_timeout),
    )
    limits.streams_body = streams_body_of(handler)  # routes that read their own body
    origins = origin_check(allowed_origins)
    state = AppState()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if not state.serving:  # startup still running, or failed
                await state.wait_ready()
                if state.failed:
                    await serve_http(scope, receive, send, _unavailable, state, limits)
                    return
            await serve_http(scope, receive, send, handler, state, limits)
        elif kind == "websocket":  # inlined: an idle connection keeps this frame alive
            if not state.ready:
                await state.wait_ready()
            endpoint = _unavailable if state.failed or state.closing else handler
            headers = limits.decode_headers(scope.get("headers", ()))
            request = build_request(scope, headers, b"", "WS", state.config)
            try:
                result = await endpoint(request)
            except Exception as error:
                log_raised(scope, endpoint, error)
                result = INTERNAL_ERROR
            if type(result) is not dict and callable(result):
                if origins is not None and (refused := origins.refuses(_seen(result, request))):
                    logger.info(
                        "websocket handshake to %s from origin %r refused: not this app's "
                        "origin nor in allowed_origins",
                        request.get("path"),
                        refused,
                    )
                    await refuse_websocket(scope, receive, send, _FOREIGN_ORIGIN)
                    return
                if not isinstance(result, AppTakeover):  # not a @websocket takeover: a raw one?
                    await run_takeover(result, receive, send, scope, endpoint, _deny_500(scope))
                    return
                result.app = state  # a @websocket takeover: give it the app's state
                connection = result(receive, send)
                # this frame lives as long as the connection: keep it lean
                del result, headers, request
                await connection
            else:
                await refuse_websocket(scope, receive, send, result)
        elif kind == "lifespan":
            protocol = partial(
                run_protocol, state, scope, receive, send, on_start, on_stop, lifespan
            )
            await run_lifespan(state, receive, send, protocol)
        else:  # the ASGI spec asks apps to raise on scope types they do not know
            raise ValueError(f"shallot does not handle ASGI scope type {kind!r}")

    app.begin_shutdown = state.begin_shutdown  # type: ignore[attr-defined]
    return app


#: The answer to a handshake from a page of another site (cross-site websocket hijacking).
_FOREIGN_ORIGIN = text("Forbidden: this origin may not open websockets here", status=403)


def _seen(takeover: Any, request: dict[str, Any]) -> dict[str, Any]:
    """The request a takeover was made for, as the middlewares left it (a ``@websocket``
    takeover keeps it), else the request as the server sent it."""
    seen = getattr(takeover, "request", None)
    return seen if isinstance(seen, dict) else request


async def _unavailable(request: dict[str, Any]) -> Response:
    return SERVICE_UNAVAILABLE


def _deny_500(scope: Scope) -> Callable[[Send], Awaitable[None]]:
    """Returns what refuses a handshake with 500 when a raw takeover turned out not to be one
    (it has not received ``websocket.connect``: it failed before it could)."""

    async def deny(send: Send) -> None:
        await deny_handshake(scope, send, INTERNAL_ERROR)

    return deny


async def refuse_websocket(scope: Scope, receive: Receive, send: Send, response: Any) -> None:
    """Refuses a websocket handshake with ``response`` once the client has asked for it."""
    message = await receive()
    if message["type"] == "websocket.connect":  # else the client left before the handshake
        await deny_handshake(scope, send, response)


async def deny_handshake(scope: Scope, send: Send, response: Any) -> None:
    """Refuses a websocket handshake (after ``websocket.connect`` was received) with
    ``response``, sent through the ``websocket.http.response`` extension when the server offers
    it; otherwise the server answers 403."""
    if "websocket.http.response" not in (scope.get("extensions") or {}):
        await send(dict(ws_close()))
        return
    try:
        status, headers, body, _ = prepare(response)
    except InvalidResponse as error:
        logger.error("websocket handshake answered with an unusable response: %s", error)
        status, headers, body, _ = prepare(INTERNAL_ERROR)
    await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body or b"", "more_body": False})
