"""Middlewares: ``apply_middleware`` composes them; each built-in one lives in its own module.

A middleware takes the next one and returns an ``async (handler, request)`` callable (SPEC §1).
"""

from __future__ import annotations

from collections.abc import Callable

from .._types import Handler, HandlerResult, Middleware, Next, Request

# --- re-exports of the request-side middlewares (routing, parameters, json, cookies, content type)
# --- end request-side
# --- re-exports of the file and header middlewares (static, cors, gzip)
# --- end file and header

__all__ = [
    "apply_middleware",
    # __all__ request-side
    # __all__ file and header
]


async def _call_handler(handler: Handler, request: Request) -> HandlerResult:
    return await handler(request)


def apply_middleware(*middlewares: Middleware) -> Callable[[Handler], Handler]:
    """Returns a function that wraps a default handler in ``middlewares``, the first one
    outermost.

    Raises:
        TypeError: a middleware is not callable (checked here, once).
    """
    for position, middleware in enumerate(middlewares):
        if not callable(middleware):
            raise TypeError(f"middleware #{position} is {middleware!r}, which is not callable")

    def wrap(handler: Handler) -> Handler:
        if not callable(handler):
            raise TypeError(f"the default handler {handler!r} is not callable")
        chain: Next = _call_handler
        for middleware in reversed(middlewares):
            chain = middleware(chain)

        async def handle(request: Request) -> HandlerResult:
            return await chain(handler, request)

        handle.__qualname__ = f"apply_middleware(...)({getattr(handler, '__qualname__', handler)})"
        return handle

    return wrap
