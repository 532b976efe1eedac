"""CORS: ``wrap_cors`` lets browsers on other origins call the app (the Fetch standard, §3.2).

A request without an ``Origin`` header is not a CORS request and passes through untouched, as do
websocket requests (browsers do not preflight them; ``build_server(allowed_origins=...)`` decides
which pages may open websockets).
A preflight (``OPTIONS`` with ``access-control-request-method``) is answered here, without
calling the handler: ``204`` with the allowed methods, headers and max age when the origin,
method and headers are all allowed, ``403`` without CORS headers otherwise. Other requests from
an allowed origin get ``access-control-allow-origin`` (and the credentials and exposed-headers
headers) on their response; a disallowed origin gets the response without them, so the browser
keeps it from the page. ``Vary: Origin`` is added whenever the answer depends on the origin.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .._types import Handler, HandlerResult, Middleware, Next, Request, Response
from ..response import text
from ._headers import add_vary, split_list, with_headers

__all__ = ["wrap_cors"]

#: Request headers a page may always set (Fetch §2.2.2); allowed unless ``allow_headers`` says
#: otherwise.
_SAFELISTED = ("accept", "accept-language", "content-language", "content-type")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 §5.6.2
_ORIGIN = re.compile(r"[a-z][a-z0-9+.\-]*://[^/?#\s]+", re.IGNORECASE)  # scheme://host[:port]


def _names(option: str, value: str | Iterable[str], *, upper: bool) -> frozenset[str] | None:
    """Returns the validated names, or ``None`` for ``"*"`` (any name)."""
    items = [value] if isinstance(value, str) else list(value)
    if "*" in items:
        return None
    for item in items:
        if not isinstance(item, str) or not _TOKEN.fullmatch(item):
            raise ValueError(f"wrap_cors: {option} holds {item!r}, which is not a header token")
    return frozenset(item.upper() if upper else item.lower() for item in items)


def _origins(value: str | Iterable[str]) -> frozenset[str] | None:
    """Returns the allowed origins, lower-cased, or ``None`` for ``"*"`` (any origin)."""
    items = [value] if isinstance(value, str) else list(value)
    if "*" in items:
        return None
    for item in items:
        if not isinstance(item, str) or (item != "null" and not _ORIGIN.fullmatch(item)):
            raise ValueError(
                f"wrap_cors: origin {item!r} is not scheme://host[:port] (no path, no slash)"
            )
    return frozenset(item.lower() for item in items)


def wrap_cors(
    allow_origins: str | Iterable[str] = "*",
    *,
    allow_origin_regex: str | re.Pattern[str] | None = None,
    allow_methods: str | Iterable[str] = ("GET", "HEAD", "POST"),
    allow_headers: str | Iterable[str] = _SAFELISTED,
    expose_headers: str | Iterable[str] = (),
    allow_credentials: bool = False,
    max_age: int | None = 600,
    allow_origin: str | None = None,
) -> Middleware:
    """Returns a middleware that answers CORS preflights and adds CORS headers to responses.

    ``allow_origins`` is ``"*"`` (any origin, the default, as in shallot 2.0), one origin or a
    list of origins such as ``"https://example.com"`` (``"null"`` must be listed to be
    allowed); ``allow_origin_regex`` also allows every origin it fully matches.
    ``allow_methods`` and ``allow_headers`` are what a preflight may ask for (``"*"`` for
    any); ``expose_headers`` are response headers the page may read; ``allow_credentials``
    lets the page send cookies and read the answer; ``max_age`` is how many seconds a browser
    may cache a preflight answer (``None``: no header). ``allow_origin`` is shallot 2.0's name
    for ``allow_origins``.

    Returns:
        The middleware.

    Raises:
        ValueError: an origin, method or header name is malformed, the regex does not compile,
            ``max_age`` is negative, or ``allow_credentials`` is combined with ``"*"`` origins
            or exposed headers (browsers refuse that combination).
        TypeError: ``allow_credentials`` is not a bool or ``max_age`` not an int.
    """
    if allow_origin is not None:
        allow_origins = allow_origin
    origins = _origins(allow_origins)
    try:
        pattern = re.compile(allow_origin_regex) if allow_origin_regex is not None else None
    except re.error as error:
        raise ValueError(f"wrap_cors: allow_origin_regex does not compile: {error}") from None
    methods = _names("allow_methods", allow_methods, upper=True)
    allowed_headers = _names("allow_headers", allow_headers, upper=False)
    exposed = _names("expose_headers", expose_headers, upper=False)
    if not isinstance(allow_credentials, bool):
        raise TypeError(f"wrap_cors: allow_credentials must be a bool, not {allow_credentials!r}")
    if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, int)):
        raise TypeError(f"wrap_cors: max_age must be an int or None, not {max_age!r}")
    if max_age is not None and max_age < 0:
        raise ValueError(f"wrap_cors: max_age must not be negative, not {max_age}")
    if allow_credentials and origins is None:
        raise ValueError("wrap_cors: allow_credentials needs listed origins or a regex, not '*'")
    if allow_credentials and exposed is None:
        raise ValueError("wrap_cors: allow_credentials cannot be combined with expose_headers '*'")

    any_origin = origins is None
    # With "*" and no credentials the answer is the same for every origin: no Vary needed.
    by_origin = not any_origin or allow_credentials
    method_list = ", ".join(sorted(methods or ()))
    common: dict[str, str | None] = {}
    if allow_credentials:
        common["access-control-allow-credentials"] = "true"

    def allowed(origin: str) -> bool:
        if any_origin or origin.lower() in (origins or ()):
            return True
        return pattern is not None and pattern.fullmatch(origin) is not None

    def allow_origin_header(origin: str) -> str:
        return "*" if any_origin else origin

    def preflight(request: Request, origin: str) -> Response:
        headers = request.get("headers") or {}
        method = headers.get("access-control-request-method", "").strip()
        asked = [name.lower() for name in split_list(headers.get("access-control-request-headers"))]
        if (
            not allowed(origin)
            or not _TOKEN.fullmatch(method)
            or (methods is not None and method.upper() not in methods)
            or (allowed_headers is not None and not set(asked) <= allowed_headers)
        ):
            refused = text("CORS preflight refused", status=403)
            return {**refused, "headers": add_vary(refused["headers"], "Origin")}
        answer: dict[str, str | None] = {
            **common,
            "access-control-allow-origin": allow_origin_header(origin),
            # A "*" here would be taken literally with credentials, so echo what was asked.
            "access-control-allow-methods": method if methods is None else method_list,
            "access-control-allow-headers": ", ".join(asked) if asked else None,
            "access-control-max-age": None if max_age is None else str(max_age),
        }
        headers_out = with_headers(None, answer)
        if by_origin:
            headers_out = add_vary(headers_out, "Origin")
        return {"status": 204, "headers": headers_out}

    simple: dict[str, str | None] = {**common}
    if exposed is None:
        simple["access-control-expose-headers"] = "*"
    elif exposed:
        simple["access-control-expose-headers"] = ", ".join(sorted(exposed))

    def middleware(next_middleware: Next) -> Next:
        async def add_cors(handler: Handler, request: Request) -> HandlerResult:
            headers = request.get("headers") or {}
            origin = headers.get("origin")
            if origin is None or request.get("method") == "WS":
                return await next_middleware(handler, request)
            if request.get("method") == "OPTIONS" and "access-control-request-method" in headers:
                return preflight(request, origin)
            response = await next_middleware(handler, request)
            if not isinstance(response, dict):  # a websocket takeover: pass it through
                return response
            new_headers = response.get("headers")
            if allowed(origin):
                changes = {**simple, "access-control-allow-origin": allow_origin_header(origin)}
                new_headers = with_headers(new_headers, changes)
            if by_origin:
                new_headers = add_vary(new_headers, "Origin")
            return {**response, "headers": new_headers}

        return add_cors

    return middleware
