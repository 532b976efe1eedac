"""Trusted hosts: ``wrap_trusted_host`` answers only requests addressed to the app's own names
(issue 14).

A request's ``Host`` header is chosen by the client. An app that builds links, redirects or
password-reset mails from it can be made to point them at another site (host header
injection), and a DNS-rebinding page reaches a server on a private address under a name of the
attacker's. Listing the names the app answers to closes both.
"""

from __future__ import annotations

from collections.abc import Iterable

from .._origins import host_matcher, parse_host
from .._types import Handler, HandlerResult, Middleware, Next, Request
from ..response import text

__all__ = ["wrap_trusted_host"]


def wrap_trusted_host(hosts: str | Iterable[str]) -> Middleware:
    """Returns a middleware that refuses requests whose ``Host`` is not in ``hosts``: ``400``
    for HTTP, ``403`` for a websocket handshake.

    ``hosts`` holds host names (``"example.com"``), ``*.example.com`` patterns (any subdomain,
    not ``example.com`` itself) and IP addresses, or is ``"*"`` (every host). Ports are not
    compared. Put it first (outermost), after ``wrap_proxy_headers`` when a proxy forwards
    the original host.

    Returns:
        The middleware.

    Raises:
        ValueError: an entry is not a host name or pattern.
        TypeError: an entry is not a string.
    """
    matches = host_matcher("wrap_trusted_host", hosts)

    def middleware(next_middleware: Next) -> Next:
        if matches is None:
            return next_middleware

        async def trusted_host(handler: Handler, request: Request) -> HandlerResult:
            host = parse_host(request["headers"].get("host", ""))
            if host is not None and matches(host[0]):
                return await next_middleware(handler, request)
            if request.get("method") == "WS":
                return text("Forbidden: unknown host", status=403)
            return text("Bad Request: unknown host", status=400)

        return trusted_host

    return middleware
