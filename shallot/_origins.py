"""Host and origin rules, pure and synchronous: parsing ``Host`` and ``Origin`` values and
matching them against allow-lists (issue 14).

Three users share them: the same-origin check of websocket handshakes (``build_server``'s
``allowed_origins``), ``wrap_trusted_host`` and ``wrap_proxy_headers``. An allow-list entry is
an exact name (``example.com``), a ``*.example.com`` pattern (any subdomain, not the name
itself), or for origins a full ``scheme://host[:port]``, whose host may be such a pattern.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

__all__ = [
    "OriginCheck",
    "allow_list",
    "host_matcher",
    "origin_check",
    "parse_host",
    "parse_origin",
]

_DEFAULT_PORTS = {"http": 80, "https": 443}
#: What a websocket's scheme is called in an ``Origin``: a page is served over http(s).
_PAGE_SCHEME = {"ws": "http", "wss": "https", "http": "http", "https": "https"}
_HOST = re.compile(r"(\[[0-9a-fA-F:.]+\]|[^\s:/?#\[\]@]+)(?::(\d{1,5}))?")
_NAME = re.compile(r"(\*\.)?[a-z0-9_\-]+(\.[a-z0-9_\-]+)*\.?|\[[0-9a-f:.]+\]")
#: What a ``*.`` pattern's star stands for: one or more labels, none of them empty.
_SUBDOMAIN = re.compile(r"[a-z0-9_\-]+(\.[a-z0-9_\-]+)*")
_ORIGIN = re.compile(r"([a-z][a-z0-9+.\-]*)://(.+)")
_ORIGIN_ENTRY = re.compile(
    r"([a-z][a-z0-9+.\-]*)://((?:\*\.)?[^\s:/?#\[\]@*]+|\[[0-9a-f:.]+\])(?::(\d{1,5}))?"
)


class Origin(NamedTuple):
    """A parsed tuple origin: scheme, host (lower-cased, IPv6 in brackets), port."""

    scheme: str
    host: str
    port: int | None


def parse_host(value: str) -> tuple[str, int | None] | None:
    """Returns ``(host, port)`` of a ``Host`` value (``"example.com:8000"``, ``"[::1]"``),
    the host lower-cased and without its one trailing dot; ``None`` when it is malformed."""
    match = _HOST.fullmatch(value.strip())
    if match is None:
        return None
    port = match.group(2)
    if port is not None and int(port) > 65535:
        return None
    name = match.group(1).lower()
    name = name[:-1] if name.endswith(".") else name  # the root's dot, once: "a.." is malformed
    return name, None if port is None else int(port)


def parse_origin(value: str) -> Origin | None:
    """Returns the parts of an ``Origin`` value (``"https://example.com:8443"``), with the
    scheme's default port filled in; ``None`` for ``"null"`` and anything malformed."""
    match = _ORIGIN.fullmatch(value.strip().lower())
    if match is None:
        return None
    scheme, rest = match.groups()
    host = parse_host(rest)
    if host is None:
        return None
    name, port = host
    return Origin(scheme, name, port if port is not None else _DEFAULT_PORTS.get(scheme))


def allow_list(option: str, value: str | Iterable[str]) -> list[str] | None:
    """Returns the entries of an allow-list option (one string or several), or ``None`` when
    they hold ``"*"`` (everything).

    Raises:
        TypeError: an entry is not a string.
    """
    entries = [value] if isinstance(value, str) else list(value)
    for entry in entries:
        if not isinstance(entry, str):
            raise TypeError(f"{option}: {entry!r} is not a string")
    return None if "*" in entries else entries


def _name_pattern(option: str, entry: str) -> Callable[[str], bool]:
    name = entry.lower().rstrip(".")
    if not _NAME.fullmatch(name):
        raise ValueError(f"{option}: {entry!r} is not a host name or a *.example.com pattern")
    if name.startswith("*."):
        suffix = name[1:]  # ".example.com"
        return lambda host: (
            host.endswith(suffix) and _SUBDOMAIN.fullmatch(host[: -len(suffix)]) is not None
        )
    return lambda host: host == name


def host_matcher(option: str, hosts: str | Iterable[str]) -> Callable[[str], bool] | None:
    """Returns a test of a host name (lower-cased, no port) against ``hosts``, or ``None``
    when ``hosts`` holds ``"*"`` (every host).

    Raises:
        ValueError: an entry is not a host name or ``*.`` pattern.
        TypeError: an entry is not a string.
    """
    entries = allow_list(option, hosts)
    if entries is None:
        return None
    tests = [_name_pattern(option, entry) for entry in entries]
    return lambda host: any(test(host) for test in tests)


def _origin_pattern(entry: str) -> Callable[[Origin | None, str], bool]:
    option = "allowed_origins"
    if entry == "null":  # sandboxed frames and file: pages send this opaque origin
        return lambda origin, raw: raw.strip() == "null"
    match = _ORIGIN_ENTRY.fullmatch(entry.lower())
    if match is None:
        if "://" in entry:
            raise ValueError(f"{option}: {entry!r} is not scheme://host[:port] (no path)")
        test = _name_pattern(option, entry)  # a bare host or pattern: any scheme, any port
        return lambda origin, raw: origin is not None and test(origin.host)
    scheme, name, port = match.groups()
    test = _name_pattern(option, name)
    want_port = int(port) if port is not None else _DEFAULT_PORTS.get(scheme)
    return lambda origin, raw: (
        origin is not None
        and origin.scheme == scheme
        and origin.port == want_port
        and test(origin.host)
    )


class OriginCheck:
    """The handshake rule of one app: an ``Origin`` must be the request's own origin (the
    page was served by this app) or one of ``allowed_origins``."""

    __slots__ = ("_tests",)

    def __init__(self, tests: list[Callable[[Origin | None, str], bool]]) -> None:
        self._tests = tests

    def refuses(self, request: dict[str, Any]) -> str | None:
        """Returns the ``Origin`` the websocket ``request`` must be refused for, or ``None``
        when it may go on (no ``Origin`` header, as from a non-browser client, included)."""
        raw = request["headers"].get("origin")
        if raw is None:
            return None
        origin = parse_origin(raw)
        if origin is not None and origin == _own_origin(request):
            return None
        if any(test(origin, raw) for test in self._tests):
            return None
        return str(raw)


def _own_origin(request: dict[str, Any]) -> Origin | None:
    scheme = _PAGE_SCHEME.get(str(request.get("scheme") or "ws"))
    if scheme is None:
        return None
    value = request["headers"].get("host")
    if value is not None:
        host = parse_host(value)
    else:  # no Host (HTTP/2 gives :authority as host): the address the server listens on
        server = request.get("server")
        host = (str(server[0]).lower(), int(server[1])) if server else None
    if host is None:
        return None
    name, port = host
    return Origin(scheme, name, port if port is not None else _DEFAULT_PORTS[scheme])


def origin_check(allowed_origins: str | Iterable[str] | None) -> OriginCheck | None:
    """Returns the origin rule for ``build_server(allowed_origins=...)``: ``None`` (the
    default) allows the app's own origin only, a list adds exact origins, hosts and
    ``*.`` patterns, ``"*"`` turns the check off (the result is ``None`` then).

    Raises:
        ValueError: an entry is malformed.
        TypeError: an entry is not a string.
    """
    if allowed_origins is None:
        return OriginCheck([])
    entries = allow_list("allowed_origins", allowed_origins)
    if entries is None:
        return None
    return OriginCheck([_origin_pattern(entry) for entry in entries])
