"""Cross-site request forgery: ``wrap_csrf`` refuses requests that other sites make a browser
send with its cookies.

A browser says where a request comes from: ``Sec-Fetch-Site`` (Fetch Metadata, every current
browser) and ``Origin`` (on every cross-origin request, and on same-origin ones that are not GET
or HEAD). The check, decided by ``cross_site_reason`` without I/O: safe methods pass;
``Sec-Fetch-Site: same-origin`` or ``none`` (the user typed the address) passes; without
``Sec-Fetch-Site``, an ``Origin`` whose host is the request's ``Host`` passes; a request with
neither header did not come from a browser (curl, a server, a webhook) and carries no
browser's cookies against its will, so it passes; origins listed as trusted pass. Everything
else is answered ``403`` with the reason, before any handler runs. Websocket handshakes are
checked too (browsers let any page open one, with cookies: cross-site websocket hijacking).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from .._types import Handler, HandlerResult, Middleware, Next, Request
from ..response import text

__all__ = ["SAFE_METHODS", "cross_site_reason", "wrap_csrf"]

#: Methods that must not change anything (RFC 9110 §9.2.1): never refused.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def _origin(value: str) -> str | None:
    """Returns ``scheme://host[:port]`` of an origin or URL, lower-cased, or None."""
    try:
        parts = urlsplit(value.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def cross_site_reason(
    method: str, headers: Mapping[str, str], trusted: frozenset[str] = frozenset()
) -> str | None:
    """Returns why a request is refused as cross-site, or None when it may pass.

    ``headers`` are the request's (lower-case names); ``trusted`` holds origins as
    ``scheme://host[:port]``, lower-case. ``method`` ``"WS"`` (a websocket handshake) is
    checked like an unsafe method.
    """
    if method in SAFE_METHODS:
        return None
    origin = headers.get("origin")
    if origin is not None and origin.strip().lower() in trusted:
        return None
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None:
        fetch_site = fetch_site.strip().lower()
        if fetch_site in ("same-origin", "none"):
            return None
        return f"cross-site request refused (Sec-Fetch-Site: {fetch_site})"
    if origin is None:
        return None  # no browser sent this: nothing to forge
    host = headers.get("host", "").strip().lower()
    parsed = _origin(origin)
    if parsed is None:
        return f"cross-site request refused (Origin: {origin.strip()[:100]})"
    if host and parsed.partition("://")[2] == host:
        return None
    return f"cross-site request refused (Origin {parsed} is not {host or 'this host'})"


def wrap_csrf(*, trusted_origins: Iterable[str] = ()) -> Middleware:
    """Returns a middleware that answers ``403`` to requests another site made a browser
    send: unsafe methods (POST, PUT, PATCH, DELETE...) and websocket handshakes whose
    ``Sec-Fetch-Site`` is ``same-site`` or ``cross-site``, or, without it, whose ``Origin`` is
    not the request's own host. ``trusted_origins`` lists origins
    (``"https://admin.example.com"``) whose requests pass all the same.

    Returns:
        The middleware. Its ``403`` is plain text naming the reason.

    Raises:
        ValueError: a trusted origin is not ``http(s)://host[:port]``.
    """
    if isinstance(trusted_origins, str):
        raise ValueError("wrap_csrf: trusted_origins must be a list of origins, not one str")
    trusted: set[str] = set()
    for origin in trusted_origins:
        parsed = _origin(origin) if isinstance(origin, str) else None
        if parsed is None or parsed != origin.strip().rstrip("/").lower():
            raise ValueError(
                f"wrap_csrf: trusted origin {origin!r} must be scheme://host[:port], "
                "such as 'https://example.com'"
            )
        trusted.add(parsed)
    frozen = frozenset(trusted)

    def middleware(next_middleware: Next) -> Next:
        async def check_origin(handler: Handler, request: Request) -> HandlerResult:
            method = request.get("method", "")
            if method not in SAFE_METHODS:
                reason = cross_site_reason(method, request.get("headers") or {}, frozen)
                if reason is not None:
                    return text(reason, status=403)
            return await next_middleware(handler, request)

        return check_origin

    return middleware
