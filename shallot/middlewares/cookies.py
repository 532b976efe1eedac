"""Cookies: ``wrap_cookies`` reads the request's cookies and writes the response's.

Requests get ``request["cookies"]``, a ``dict[str, str]`` parsed from every ``Cookie`` header
(HTTP/2 may split it into several, RFC 9113 §8.2.3). Parsing never raises: a pair without a
name or an ``=`` is skipped and the rest are kept, unlike ``http.cookies.SimpleCookie``, which
drops everything after the first pair it dislikes. A response's ``cookies`` mapping becomes one
``set-cookie`` header per cookie, never joined (RFC 6265 §3). ``wrap_cookies`` works both bare,
as in shallot 2.0, and as the factory ``wrap_cookies()`` of SPEC §6.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from datetime import datetime, timezone
from email.utils import formatdate
from typing import Any, overload
from urllib.parse import quote

from .._types import Handler, HandlerResult, Middleware, Next, Request, Response

__all__ = ["format_set_cookie", "parse_cookies", "wrap_cookies"]

#: RFC 9110 §5.6.2 token characters: what a cookie name may hold.
_TOKEN = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~")
#: RFC 6265 §4.1.1 cookie-octets: a value made of these is sent as it is.
_OCTETS = frozenset(chr(c) for c in range(0x21, 0x7F)) - set('",;\\')
#: Kept as they are when a value must be percent-encoded; ``%`` is escaped so it stays decodable.
_SAFE = "".join(sorted(_OCTETS - {"%"}))
#: RFC 6265 §4.1.1 attribute values: any printable ASCII except ``;``.
_ATTRIBUTE = frozenset(chr(c) for c in range(0x20, 0x7F)) - {";"}
_SAMESITE = {"strict": "Strict", "lax": "Lax", "none": "None"}
#: shallot 2.0 accepted these ``http.cookies.Morsel`` keys; browsers ignore them, and so do we.
_OBSOLETE = frozenset({"comment", "version"})
_KEYS = (
    frozenset({"value", "expires", "path", "domain", "max-age", "secure", "httponly", "samesite"})
    | _OBSOLETE
)
_DELETE = "=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/"


def parse_cookies(header: str) -> dict[str, str]:
    """Returns the cookies of a ``Cookie`` header value. Never raises: pairs without ``=`` or
    with an empty name are skipped; a name sent twice keeps its first value, the most specific
    one (RFC 6265 §5.4); a value in double quotes loses them."""
    cookies: dict[str, str] = {}
    for pair in header.split(";"):
        name, equals, value = pair.partition("=")
        name = name.strip()
        if not equals or not name or name in cookies:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            value = value[1:-1]
        cookies[name] = value
    return cookies


def _decode(raw: bytes) -> str:
    # Browsers send non-ASCII cookie values as raw UTF-8; latin-1 keeps anything else intact.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _cookie_header(request: Request) -> str:
    raw = request.get("headers_list")
    if raw is not None:
        values = [_decode(bytes(value)) for name, value in raw if bytes(name).lower() == b"cookie"]
        return "; ".join(values)  # not the "," that request["headers"] joins repeats with
    header = str(request.get("headers", {}).get("cookie", ""))
    try:  # a request dict built by hand: undo the latin-1 decoding if there was one
        return _decode(header.encode("latin-1"))
    except UnicodeEncodeError:
        return header


def _expires(name: str, value: Any) -> str:
    if isinstance(value, str):
        return _attribute(name, "expires", value)
    if isinstance(value, datetime):
        if value.tzinfo is None:  # a naive datetime is taken as UTC
            value = value.replace(tzinfo=timezone.utc)
        value = value.timestamp()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"cookie {name!r}: expires must be a timestamp, a datetime or a "
            f"preformatted str, not {value!r}"
        )
    try:
        return formatdate(value, usegmt=True)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"cookie {name!r}: expires {value!r} is out of range") from None


def _attribute(name: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not _ATTRIBUTE.issuperset(value):
        raise ValueError(
            f"cookie {name!r}: {key} {value!r} must be a str of printable ASCII without ';'"
        )
    return value


def format_set_cookie(name: str, cookie: Mapping[str, Any] | None) -> str:
    """Returns the ``set-cookie`` header value for one entry of a response's ``cookies``.

    ``cookie`` holds ``value`` and the optional attributes ``expires`` (a timestamp, a
    datetime, naive meaning UTC, or a preformatted str), ``max-age``, ``path``, ``domain``,
    ``secure``, ``httponly`` and ``samesite``; None deletes the cookie (``Path=/``). A value
    outside the RFC 6265 cookie-octets is percent-encoded as UTF-8.

    Raises:
        TypeError: ``cookie`` is not a mapping, or an attribute has the wrong type.
        ValueError: ``name`` is not a token, or an attribute is unknown or malformed.
    """
    if not isinstance(name, str) or not name or not _TOKEN.issuperset(name):
        raise ValueError(f"cookie name {name!r} is not a token (RFC 9110 §5.6.2)")
    if cookie is None:
        return name + _DELETE
    if not isinstance(cookie, Mapping):
        raise TypeError(
            f"cookie {name!r} must be a dict such as {{'value': ...}} or None, not {cookie!r}"
        )
    options = {str(key).lower(): option for key, option in cookie.items()}
    unknown = options.keys() - _KEYS
    if unknown:
        raise ValueError(f"cookie {name!r}: unknown attribute(s) {', '.join(sorted(unknown))}")
    value = options.get("value", "")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise TypeError(f"cookie {name!r}: the value must be a str, not {value!r}")
    value = str(value)
    if not _OCTETS.issuperset(value):
        value = quote(value, safe=_SAFE)
    parts = [f"{name}={value}"]
    if options.get("expires") is not None:
        parts.append(f"Expires={_expires(name, options['expires'])}")
    max_age = options.get("max-age")
    if max_age is not None:
        if isinstance(max_age, bool) or not isinstance(max_age, (int, str)):
            raise TypeError(f"cookie {name!r}: max-age must be an int, not {max_age!r}")
        if not re.fullmatch(r"-?[0-9]+", str(max_age)):
            raise ValueError(f"cookie {name!r}: max-age {max_age!r} is not a whole number")
        parts.append(f"Max-Age={int(max_age)}")
    for key, label in (("domain", "Domain"), ("path", "Path")):
        if options.get(key) is not None:
            parts.append(f"{label}={_attribute(name, key, options[key])}")
    if options.get("secure"):
        parts.append("Secure")
    if options.get("httponly"):
        parts.append("HttpOnly")
    samesite = options.get("samesite")
    if samesite is not None:
        if not isinstance(samesite, str) or samesite.lower() not in _SAMESITE:
            raise ValueError(
                f"cookie {name!r}: samesite must be 'Strict', 'Lax' or 'None', not {samesite!r}"
            )
        parts.append(f"SameSite={_SAMESITE[samesite.lower()]}")
    return "; ".join(parts)


def _set_cookies(response: Response) -> Response:
    cookies = response["cookies"]
    result = {key: value for key, value in response.items() if key != "cookies"}
    if not cookies:
        return result
    if not isinstance(cookies, Mapping):
        raise TypeError(f"response cookies must be a dict of name -> attributes, not {cookies!r}")
    headers = response.get("headers") or ()
    pairs: list[tuple[Any, Any]] = list(
        headers.items() if isinstance(headers, Mapping) else headers
    )
    pairs.extend(
        ("set-cookie", format_set_cookie(name, cookie)) for name, cookie in cookies.items()
    )
    result["headers"] = pairs
    return result


def _middleware(next_middleware: Next) -> Next:
    async def handle_cookies(handler: Handler, request: Request) -> HandlerResult:
        cookies = parse_cookies(_cookie_header(request))
        response = await next_middleware(handler, {**request, "cookies": cookies})
        if not isinstance(response, dict) or "cookies" not in response:
            return response  # a websocket takeover, or nothing to set
        return _set_cookies(response)

    return handle_cookies


@overload
def wrap_cookies() -> Middleware: ...


@overload
def wrap_cookies(next_middleware: Next, /) -> Next: ...


def wrap_cookies(next_middleware: Next | None = None, /) -> Middleware | Next:
    """Returns a middleware that sets ``request["cookies"]`` and turns the response's
    ``cookies`` into ``set-cookie`` headers (see ``format_set_cookie``), removing the key.

    Used bare (``apply_middleware(wrap_cookies)``), it is itself that middleware: its argument
    is then the next middleware, and it returns the wrapped one.

    Returns:
        The middleware, or the wrapped next middleware when used bare. A malformed response
        ``cookies`` entry is a handler bug: the middleware raises it as ``TypeError`` or
        ``ValueError``, which shallot logs and answers with 500.

    Raises:
        TypeError: the argument is given but is not callable.
    """
    if next_middleware is None:
        return _middleware
    if not callable(next_middleware):
        raise TypeError(
            f"wrap_cookies takes no options; {next_middleware!r} is not the next middleware"
        )
    return _middleware(next_middleware)
