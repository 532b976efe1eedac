"""Middlewares: ``apply_middleware`` composes them; each built-in one lives in its own module.

A middleware takes the next one and returns an ``async (handler, request)`` callable (SPEC §1).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, cast

from .._types import Handler, HandlerResult, Middleware, Next, Request
from .content_type import wrap_content_type
from .cookies import wrap_cookies
from .cors import wrap_cors
from .gzip import wrap_gzip
from .json import wrap_json
from .parameters import wrap_parameters
from .routing import wrap_routes
from .static import wrap_static

_P = ParamSpec("_P")

__all__ = [
    "apply_middleware",
    "wrap_content_type",
    "wrap_cookies",
    "wrap_cors",
    "wrap_gzip",
    "wrap_json",
    "wrap_parameters",
    "wrap_routes",
    "wrap_static",
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
        if not callable(handler):
            raise TypeError(f"the default handler {handler!r} is not callable")
        chain: Next = _call_handler
        for middleware in reversed(middlewares):
            chain = middleware(chain)

        async def handle(request: Request, *route_args: Any) -> HandlerResult:
            if route_args:  # the pile is itself a route's handler: pass the route's arguments on
                return await chain(functools.partial(_with_args, handler, route_args), request)
            return await chain(handler, request)

        handle.__qualname__ = f"apply_middleware(...)({getattr(handler, '__qualname__', handler)})"
        # It passes every argument on to ``handler``, so it takes what ``handler`` takes.
        return cast("Callable[_P, Awaitable[HandlerResult]]", handle)

    return wrap
