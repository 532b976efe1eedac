"""What a request that fails becomes: a 500 logged once, naming the route's handler, the
method and the path, with the traceback in the log only (issue 13).

A handler's exception passes through the middleware pile on its way to the error boundary
(``_http``, ``_asgi``); the routing middleware ``blame``s it on the route's handler as it goes
by, which costs nothing until something is raised. A response's stream fails after the
router is gone: ``culprit`` then asks the routers of the pile again (``route_handler_for``,
which ``wrap_routes`` puts on its middleware and ``apply_middleware`` on its pile), so only
the failure pays for the lookup. What a handler returns instead of a response dict must be a
takeover (SPEC §1); ``run_takeover`` hands the connection to it and turns anything else (a
helper returned uncalled, say) into a 500 as well.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable
from typing import Any

from ._types import Receive, Send

logger = logging.getLogger("shallot")

#: The attribute that names, on an exception, the route handler it came out of.
_HANDLER = "_shallot_handler"

#: ``route_handler_for(scope)``: the handler of the route a scope goes to, or None for none.
RouteHandlerFor = Callable[[Any], Any]


def blame(error: BaseException, handler: Any) -> None:
    """Records on ``error`` the route handler it came out of, unless an inner route (of a
    nested pile) recorded its own first."""
    if _HANDLER not in error.__dict__:
        setattr(error, _HANDLER, handler)


def handler_name(handler: Any) -> str:
    """Returns a handler's name for logs: its qualified name, or its repr."""
    return getattr(handler, "__qualname__", None) or repr(handler)


def first_route_handler_for(owners: Iterable[Any]) -> RouteHandlerFor | None:
    """Returns the ``route_handler_for`` of a pile of ``owners`` (its middlewares, outermost
    first, and its default handler): the first of theirs that finds a route, or None when
    none of them routes."""
    candidates = (getattr(owner, "route_handler_for", None) for owner in owners)
    finders: list[RouteHandlerFor] = [finder for finder in candidates if callable(finder)]
    if len(finders) < 2:
        return finders[0] if finders else None

    def route_handler_for(scope: Any) -> Any:
        for finder in finders:
            found = finder(scope)
            if found is not None:
                return found
        return None

    return route_handler_for


def culprit(scope: Any, handler: Any) -> Any:
    """Returns the handler to name for a failure in answering ``scope``: the handler of the
    route it went to (the innermost, where a route's handler is a pile with routes of its
    own), found by looking it up again, or ``handler`` when no route matches. For failures
    only: it repeats the lookup."""
    while True:
        finder = getattr(handler, "route_handler_for", None)
        found = finder(scope) if callable(finder) else None
        if found is None or found is handler:
            return handler
        handler = found


def _where(scope: Any) -> str:
    method = scope.get("method", "WS") if scope.get("type") != "websocket" else "WS"
    path = str(scope.get("path", ""))
    return f"{method} {path if path.isprintable() else ascii(path)}"


def log_raised(scope: Any, handler: Any, error: BaseException) -> None:
    """Logs once, with its traceback, that a handler raised while answering ``scope``."""
    culprit = error.__dict__.get(_HANDLER, handler)
    logger.error("handler %s raised on %s", handler_name(culprit), _where(scope), exc_info=error)


def log_stream_failed(scope: Any, handler: Any, when: str, error: BaseException) -> None:
    """Logs once, with its traceback, that the stream of the response to ``scope`` failed
    (``when``: "before its first chunk", say), naming the route's handler as ``log_raised``
    does."""
    name = handler_name(culprit(scope, handler))
    logger.error("stream of handler %s failed %s on %s", name, when, _where(scope), exc_info=error)


def log_unusable(scope: Any, handler: Any, problem: str) -> None:
    """Logs once that what the handler of ``scope`` returned cannot be sent. Unlike an
    exception, a value is not blamed by the router on its way out, so the method and path
    name the route when ``handler`` is a middleware pile."""
    name = handler_name(handler)
    if name.startswith("apply_middleware("):
        logger.error("%s: the handler %s", _where(scope), problem)
    else:
        logger.error("%s: the handler %s %s", _where(scope), name, problem)


async def call_app(app: Any, scope: Any, receive: Receive, send: Send) -> None:
    """Calls the ASGI ``app``, as a server does; a value it returns means it is no ASGI app
    but a handler or a middleware pile not given to ``build_server`` (answered by an empty 500,
    not a word in any log, were it left to the server).

    Raises:
        TypeError: ``app`` returned something.
    """
    result = await app(scope, receive, send)
    if result is not None:
        raise TypeError(
            f"{handler_name(app)} returned {type(result).__name__} to the server: it is a "
            "handler, not an ASGI app; serve build_server(...) of it"
        )


def not_a_response(result: Any) -> str:
    """Says what is wrong with ``result``, a callable that is not a takeover."""
    if inspect.isfunction(result) or inspect.ismethod(result):
        return (
            f"returned the function {handler_name(result)} instead of calling it; "
            "a handler returns a response dict or a takeover"
        )
    return f"returned {result!r}, which is neither a response dict nor a takeover"


async def run_takeover(
    takeover: Any, receive: Receive, send: Send, scope: Any, handler: Any, refuse: Any
) -> None:
    """Hands the raw connection to ``takeover(receive, send)``. A callable that is not a
    takeover (its call fails, or gives no awaitable) is logged once and answered with
    ``await refuse(send)`` (a 500); a takeover that fails while it runs is logged once, and
    the server ends the connection (answering 500 itself when nothing was sent)."""
    try:
        running = takeover(receive, send)
    except Exception as error:
        if inspect.isfunction(takeover):  # most likely a helper or handler returned uncalled
            log_unusable(scope, handler, not_a_response(takeover))
        else:
            log_raised(scope, handler, error)
        await refuse(send)
        return
    if not inspect.isawaitable(running):
        log_unusable(scope, handler, not_a_response(takeover))
        await refuse(send)
        return
    try:
        await running
    except Exception as error:
        log_raised(scope, handler, error)
