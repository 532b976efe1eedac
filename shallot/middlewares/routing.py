"""Routing: ``wrap_routes`` sends each request to the handler its path and method name.

The table is compiled once, when the pile is built, into a ``Router`` (``_router``: a dict of
fully static paths plus a trie for the paths with ``{name}`` parameters, looked up by the depth
of the path, never by the number of routes). The middleware around it only binds the route
arguments to the handler and records what matched (SPEC §6, issue 4).
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import Any

from .._body import any_streams_body, streams_body_of
from .._failures import blame
from .._types import Handler, HandlerResult, Middleware, Next, Request, Route
from ._router import HTTP_METHODS, RouteMatch, Router

__all__ = ["HTTP_METHODS", "RouteMatch", "Router", "wrap_routes"]


class _Bound:
    """A route's handler with its arguments bound: ``bound(request)`` is
    ``handler(request, *args)``. A slotted object rather than a closure: it is made per
    routed request."""

    __slots__ = ("args", "handler")

    def __init__(self, handler: Handler, args: tuple[str, ...]) -> None:
        self.handler = handler
        self.args = args

    def __call__(self, request: Request) -> Awaitable[HandlerResult]:
        return self.handler(request, *self.args)

    def __getattr__(self, name: str) -> Any:
        # What else is asked of it (its __qualname__ for logs, a marker a decorator set) is
        # the handler's: looked up only when asked, not copied per request.
        if name in _Bound.__slots__:  # not set yet (a copy in the making): no recursion
            raise AttributeError(name)
        return getattr(self.handler, name)


def wrap_routes(routes: Iterable[Route] | Router) -> Middleware:
    """Returns a middleware that routes requests by path and method.

    ``routes`` is a list of ``(path, methods, handler)``, or a ``Router`` built from one:
    ``path`` starts with ``/`` and each
    ``{name}`` segment in it becomes a positional string argument of
    ``handler(request, *args)``; ``methods`` lists HTTP verbs, ``"WS"`` for websockets. A
    match sets ``request["route"]`` to its pattern. A path routed under other methods only goes
    on to the default handler with ``request["allowed_methods"]`` set; anything else goes on
    to it unchanged. An entry may name its route with a fourth member,
    ``(path, methods, handler, name)``: build the ``Router`` yourself and its ``url_for(name,
    **params)`` gives the route's path.

    Raises:
        TypeError: an entry or a part of it has the wrong type (see ``Router``).
        ValueError: an entry is malformed or repeats a path and method (see ``Router``).
    """
    router = routes if isinstance(routes, Router) else Router(routes)
    static, walk = router._static, router._walk

    def middleware(next_middleware: Next) -> Next:

        async def route(handler: Handler, request: Request) -> HandlerResult:
            path = request.get("path", "")
            method = request.get("method", "")
            # Router.lookup, its static table inlined: most requests end there (issue 18).
            hits = static.get(path.rstrip("/"))
            match = hits.get(method) if hits is not None else None
            if match is None:
                match = walk(method, path)
            if match is not None:
                bound = match.handler if not match.args else _Bound(match.handler, match.args)
                routed = request.copy()  # the caller's request stays as it was
                routed["route"] = match.route
                try:
                    return await next_middleware(bound, routed)
                except Exception as error:  # free until raised: the 500 log names the route's
                    blame(error, match.handler)  # handler, not the pile (issue 13)
                    raise
            allowed = router.allowed_methods(path)
            if allowed is None:
                return await next_middleware(handler, request)
            return await next_middleware(handler, {**request, "allowed_methods": allowed})

        return route

    def route_handler_for(scope: Any) -> Handler | None:
        # For failure logs (_failures.culprit): the lookup the request made, made again.
        method = "WS" if scope.get("type") == "websocket" else scope.get("method", "")
        match = router.lookup(method, scope.get("path", ""))
        return None if match is None else match.handler

    middleware.route_handler_for = route_handler_for  # type: ignore[attr-defined]
    if any_streams_body(router.handlers()) is not None:  # some route reads its body as it comes

        def streams_body(scope: Any, headers: dict[str, str]) -> bool:
            match = router.lookup(scope.get("method", ""), scope.get("path", ""))
            rule = None if match is None else streams_body_of(match.handler)
            return rule is not None and rule(scope, headers)

        middleware.streams_body = streams_body  # type: ignore[attr-defined]
    return middleware
