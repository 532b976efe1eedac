"""Proxy headers: ``wrap_proxy_headers`` takes the client, scheme and host a reverse proxy saw
from ``Forwarded`` (RFC 7239) or ``X-Forwarded-For``/``-Proto``/``-Host``, and only from the
proxies it is told to trust (issue 14).

Any client can send these headers, so they are read only when the peer (``request["client"]``)
is a trusted address. Each proxy appends the address it received the request from; reading
from the right, trusted proxies are skipped and the first other address is the client. The
scheme and host come from the same hop: in ``Forwarded`` from that element, in
``X-Forwarded-Proto``/``-Host`` from the entry at the same position from the right (or the
only entry, when a proxy overwrote the list). Each header counts on its own: without
``X-Forwarded-For`` the peer is the only hop, and the rightmost ``-Proto``/``-Host`` entry its.

A node that is no IP address (``unknown``, an ``_obfuscated`` name or garbage, RFC 7239 §6;
an element without ``for=``; a port above 65535) ends the walk like an untrusted one, but
never becomes the client: ``client`` is then the nearest address known, the trusted proxy
right of it or the peer itself, while the scheme and host of its hop are still taken. An
obfuscated port (``1.2.3.4:_abc``) gives port ``0``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from typing import Any

from .._origins import allow_list, parse_host
from .._types import Handler, HandlerResult, Middleware, Next, Request
from ._headers import split_list

__all__ = ["wrap_proxy_headers"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: One ``name=value`` pair of a ``Forwarded`` element; the value a token or a quoted string.
_PAIR = re.compile(r'\s*([!#$%&\'*+\-.^_`|~0-9A-Za-z]+)=("(?:[^"\\]|\\.)*"|[^;,"\s]*)\s*')
_WS_SCHEME = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
_HTTP_SCHEME = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
_PORT = re.compile(r"[0-9]{1,5}")
#: RFC 7239 §6.3: a port a proxy hides behind an ``_``-prefixed identifier.
_OBFUSCATED_PORT = re.compile(r"_[0-9A-Za-z._\-]+")


def _networks(trusted: str | Iterable[str]) -> list[_Network] | None:
    entries = allow_list("wrap_proxy_headers", trusted)
    if entries is None:
        return None
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(
                f"wrap_proxy_headers: {entry!r} is not an IP address or network (10.0.0.0/8)"
            ) from None
    return networks


def _trusted_test(trusted: str | Iterable[str]) -> Callable[[str], bool]:
    networks = _networks(trusted)
    if networks is None:
        return lambda address: True

    def is_trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip("[]"))
        except ValueError:  # "unknown", an obfuscated name, a Unix socket's path
            return False
        return any(ip in network for network in networks)

    return is_trusted


def _parse_forwarded(value: str) -> list[dict[str, str]] | None:
    """Returns the elements of a ``Forwarded`` header, each a dict of its lower-cased
    parameters with quotes removed; ``None`` when the header is malformed."""
    elements: list[dict[str, str]] = []
    position, end = 0, len(value)
    while True:
        element: dict[str, str] = {}
        while True:
            match = _PAIR.match(value, position)
            if match is None:
                return None
            name, raw = match.groups()
            if raw.startswith('"'):
                raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
            element[name.lower()] = raw
            position = match.end()
            if position < end and value[position] == ";":
                position += 1
                continue
            break
        elements.append(element)
        if position >= end:
            return elements
        if value[position] != ",":
            return None
        position += 1


def _node(value: str) -> tuple[str, int] | None:
    """Returns (address, port) of a ``for=`` node or ``X-Forwarded-For`` entry, port ``0``
    when none or an obfuscated one is given; ``None`` when the node is no IP address (RFC
    7239 §6: ``unknown``, an ``_obfuscated`` name, garbage) or its port is out of range."""
    value = value.strip()
    if value.startswith("["):  # [IPv6]:port
        address, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return None
        port: str | None = rest[1:] if rest else None
    elif value.count(":") == 1:  # IPv4:port
        address, _, port = value.partition(":")
    else:  # an address without a port, a bare IPv6 one included
        address, port = value, None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if value.startswith("[") and ip.version != 6:  # brackets are for IPv6 only
        return None
    if port is None or _OBFUSCATED_PORT.fullmatch(port):
        return address, 0
    if _PORT.fullmatch(port) and int(port) <= 65535:
        return address, int(port)
    return None


def _pick(nodes: list[tuple[str, int] | None], is_trusted: Callable[[str], bool]) -> int:
    """Returns the index of the client's hop: from the right, the first node that is not a
    trusted proxy or no address at all, or the leftmost one when every other is trusted."""
    for index in range(len(nodes) - 1, 0, -1):
        node = nodes[index]
        if node is None or not is_trusted(node[0]):
            return index
    return 0


def _same_hop(values: list[str], hops: int) -> str | None:
    if not values:
        return None
    return values[-hops] if len(values) >= hops else values[0]


def _changes(request: Request, is_trusted: Callable[[str], bool]) -> dict[str, Any]:
    headers = request["headers"]
    forwarded = headers.get("forwarded")
    if forwarded is not None:
        elements = _parse_forwarded(forwarded)
        if not elements:
            return {}  # malformed: nothing in it can be told from what a client wrote
        # An element without for= hides its client, as for=unknown does (RFC 7239 §5.2).
        nodes = [_node(element.get("for", "")) for element in elements]
        index = _pick(nodes, is_trusted)
        proto, host = elements[index].get("proto"), elements[index].get("host")
    else:
        nodes = [_node(entry) for entry in split_list(headers.get("x-forwarded-for"))]
        # Without X-Forwarded-For the peer is the only hop known: its entry is the rightmost.
        index = _pick(nodes, is_trusted) if nodes else 0
        hops = len(nodes) - index if nodes else 1
        proto = _same_hop(split_list(headers.get("x-forwarded-proto")), hops)
        host = _same_hop(split_list(headers.get("x-forwarded-host")), hops)
    changes: dict[str, Any] = {}
    # A hop that names no address leaves the client the nearest one known: the trusted
    # proxy right of it, or the peer itself.
    client = next((node for node in nodes[index:] if node is not None), None)
    if client is not None:
        changes["client"] = client
    schemes = _WS_SCHEME if request.get("type") == "websocket" else _HTTP_SCHEME
    if proto is not None and proto.lower() in schemes:
        changes["scheme"] = schemes[proto.lower()]
    if host is not None and parse_host(host) is not None:
        changes["headers"] = {**headers, "host": host.strip()}
    return changes


def wrap_proxy_headers(trusted: str | Iterable[str]) -> Middleware:
    """Returns a middleware that sets ``request["client"]``, ``request["scheme"]`` and the
    ``host`` header from what the proxies in ``trusted`` forwarded.

    ``trusted`` lists the proxies' addresses and networks (``"127.0.0.1"``, ``"10.0.0.0/8"``,
    ``"::1"``), or is ``"*"`` to trust every peer (only where nothing but the proxy can reach
    the app). Requests from other peers pass unchanged: their forwarded headers are ignored.
    ``Forwarded`` is read when present, else ``X-Forwarded-For``/``-Proto``/``-Host``. For a
    websocket, ``https`` becomes ``wss`` and ``http`` ``ws``.

    Returns:
        The middleware.

    Raises:
        ValueError: an entry is not an address or network.
        TypeError: an entry is not a string.
    """
    from_proxy = _trusted_test(trusted)

    def middleware(next_middleware: Next) -> Next:
        async def proxy_headers(handler: Handler, request: Request) -> HandlerResult:
            peer = request.get("client")
            if not peer or not from_proxy(str(peer[0])):
                return await next_middleware(handler, request)
            changes = _changes(request, from_proxy)
            if changes:
                request = {**request, **changes}
            return await next_middleware(handler, request)

        return proxy_headers

    return middleware
