"""Middlewares: ``apply_middleware`` composes them; each built-in one lives in its own module.

A middleware takes the next one and returns an ``async (handler, request)`` callable (SPEC §1).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, cast

from .._body import any_streams_body
from .._checks import APPLIER
from .._failures import first_route_handler_for
from .._types import Handler, HandlerResult, Middleware, Next, Request
from .content_type import wrap_content_type
from .cookies import wrap_cookies
from .cors import wrap_cors
from .csrf import wrap_csrf
from .gzip import wrap_gzip
from .json import wrap_json
from .multipart import wrap_multipart
from .parameters import wrap_parameters
from .proxy_headers import wrap_proxy_headers
from .routing import Router, wrap_routes
from .session import wrap_session
from .static import wrap_static
from .trusted_host import wrap_trusted_host

_P = ParamSpec("_P")

__all__ = [
    "Router",
    "apply_middleware",
    "wrap_content_type",
    "wrap_cookies",
    "wrap_cors",
    "wrap_csrf",
    "wrap_gzip",
    "wrap_json",
    "wrap_multipart",
    "wrap_parameters",
    "wrap_proxy_headers",
    "wrap_routes",
    "wrap_session",
    "wrap_static",
    "wrap_trusted_host",
]


async def _with_args(handler: Handler, route_args: tuple[Any, ...], request: Request) -> Any:
    return await handler(request, *route_args)


def _call_handler(handler: Handler, request: Request) -> Awaitable[HandlerResult]:
    # Not a coroutine of its own: the innermost middleware awaits the handler's directly.
    return handler(request)


def apply_middleware(
    *middlewares: Middleware,
) -> Callable[[Callable[_P, Awaitable[HandlerResult]]], Callable[_P, Awaitable[HandlerResult]]]:
    """Returns a function that wraps a default handler in ``middlewares``, the first one
    outermost. The wrapped handler keeps the handler's signature: a pile used as a route's
    handler takes the route's arguments.

    Raises:
        TypeError: a middleware is not callable (checked here, once).
    """
    for position, middleware in enumerate(middlewares):
        if not callable(middleware):
            raise TypeError(f"middleware #{position} is {middleware!r}, which is not callable")

    def wrap(
        handler: Callable[_P, Awaitable[HandlerResult]],
    ) -> Callable[_P, Awaitable[HandlerResult]]:
        if isinstance(handler, dict):  # served without its default handler: it got a request
            raise TypeError(
                "apply_middleware(...) was called with a request, not a default handler: the "
                "handler is apply_middleware(...)(default_handler)"
            )
        if not callable(handler):
            raise TypeError(f"the default handler {handler!r} is not callable")
        chain: Next = _call_handler
        for middleware in reversed(middlewares):
            chain = middleware(chain)

        # Not a coroutine function: it returns the outermost middleware's awaitable, so a
        # request costs no frame here (issue 18); awaiting what it returns is the same.
        def handle(request: Request, *route_args: Any) -> Awaitable[HandlerResult]:
            if route_args:  # the pile is itself a route's handler: pass the route's arguments on
                return chain(functools.partial(_with_args, handler, route_args), request)
            return chain(handler, request)

        handle.__qualname__ = f"apply_middleware(...)({getattr(handler, '__qualname__', handler)})"
        rule = any_streams_body((*middlewares, handler))  # issue 15: bodies read as streams
        if rule is not None:
            handle.streams_body = rule  # type: ignore[attr-defined]
        finder = first_route_handler_for((*middlewares, handler))  # failure logs name the route
        if finder is not None:
            handle.route_handler_for = finder  # type: ignore[attr-defined]
        # It passes every argument on to ``handler``, so it takes what ``handler`` takes.
        return cast("Callable[_P, Awaitable[HandlerResult]]", handle)

    setattr(wrap, APPLIER, wrap)  # build_server and routes refuse it, asking for the handler
    return wrap
