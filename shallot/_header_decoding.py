"""ASGI header lists -> request header dicts, decoded once per distinct name (and value, for
headers whose values repeat from client to client), within bounded tables.
"""

from __future__ import annotations

from typing import Any

#: Headers whose values repeat from client to client: their values are shared too.
_VALUES_REPEAT = frozenset(
    (
        "accept",
        "accept-encoding",
        "accept-language",
        "cache-control",
        "connection",
        "content-type",
        "dnt",
        "host",
        "origin",
        "pragma",
        "sec-ch-ua",
        "sec-ch-ua-mobile",
        "sec-ch-ua-platform",
        "sec-fetch-dest",
        "sec-fetch-mode",
        "sec-fetch-site",
        "sec-websocket-extensions",
        "sec-websocket-version",
        "te",
        "upgrade",
        "upgrade-insecure-requests",
        "user-agent",
    )
)


class HeaderDecoder:
    """Turns ASGI header lists into request header dicts, for one app.

    Requests repeat the same few header names, so each name is decoded and lower-cased once and
    every request shares that string instead of making its own; the values of the headers in
    ``_VALUES_REPEAT`` are shared the same way (a websocket request holds its user-agent, say,
    for hours). Both tables are bounded, so names and values a client makes up cannot grow
    them for ever; past the bound, headers are simply decoded each time.

    A whole header list made only of such headers (a load balancer's health check, a client
    library's ``host``/``user-agent``/``accept``) is remembered too, decoded dict and all: the
    next request that sends the same list gets a copy of that dict. A list with any other
    header (a cookie, a ``sec-websocket-key``, a header repeated) is never remembered. At most
    ``max_lists`` are kept; the table is emptied when it fills up.
    """

    __slots__ = ("_lists", "_names", "_values", "decode", "max_lists", "max_names", "max_values")

    #: Values longer than this are never shared.
    max_shared_length = 512

    def __init__(self, max_names: int = 1024, max_values: int = 2048, max_lists: int = 256) -> None:
        self.max_names = max_names
        self.max_values = max_values
        self.max_lists = max_lists
        #: Header lists of ``_VALUES_REPEAT`` headers only, as tuples -> their decoded dict.
        self._lists: dict[tuple[Any, ...], dict[str, str]] = {}
        #: Every name learnt (those of ``_VALUES_REPEAT`` from the start): one lookup a header.
        self._names = {name.encode(): name for name in _VALUES_REPEAT}
        #: Values of ``_VALUES_REPEAT`` headers. Only those are ever stored, so a hit is always
        #: such a value, whatever header it is looked up for (never a cookie or a key).
        self._values: dict[bytes, str] = {}
        #: The bound method, made once: the hot path calls it, not ``self(...)`` (issue 18).
        self.decode = self._decode

    def remembered(self) -> tuple[int, int, int]:
        """Returns how many header names, values and whole lists the tables hold."""
        return len(self._names), len(self._values), len(self._lists)

    def __call__(self, raw: Any) -> dict[str, str]:
        """Returns the ASGI header list as a dict: lower-cased names, latin-1 values, repeats
        joined with ``","`` (RFC 9110 §5.3), or ``"; "`` for cookie (RFC 9113 §8.2.3)."""
        return self._decode(raw)

    def _decode(self, raw: Any) -> dict[str, str]:
        try:
            known = self._lists.get(tuple(raw))
        except TypeError:  # pairs that are not hashable (lists, bytearrays): decoded below
            known = None
        if known is not None:
            return known.copy()  # each request gets a dict of its own to change
        names, values = self._names, self._values
        headers = {}
        try:
            for name, value in raw:  # a loop, not a comprehension: no function call on 3.11
                key = names[name]
                text = values.get(value)
                if text is None:
                    text = self._value(value) if key in _VALUES_REPEAT else value.decode("latin-1")
                headers[key] = text
        except (KeyError, TypeError):  # a name not seen yet (or not bytes): learn it below
            headers = {}
        if len(headers) == len(raw):  # names all known and none repeated: the common case
            if _VALUES_REPEAT.issuperset(headers):
                self._remember(raw, headers)
            return headers
        headers = {}
        for name, value in raw:
            key = self._name(name)
            text = self._value(value) if key in _VALUES_REPEAT else value.decode("latin-1")
            if key in headers:
                headers[key] = f"{headers[key]}{'; ' if key == 'cookie' else ','}{text}"
            else:
                headers[key] = text
        return headers

    def _remember(self, raw: Any, headers: dict[str, str]) -> None:
        for value in headers.values():
            if len(value) > self.max_shared_length or "boundary=" in value:
                return
        if len(self._lists) >= self.max_lists:
            self._lists.clear()  # bounded; the lists in use come back with their next request
        self._lists[tuple(raw)] = headers.copy()

    def _name(self, raw: bytes) -> str:
        known = type(raw) is bytes
        name = self._names.get(raw) if known else None
        if name is None:
            name = bytes(raw).decode("latin-1").lower()
            if known and len(self._names) < self.max_names:
                self._names[raw] = name
        return name

    def _value(self, raw: bytes) -> str:
        known = type(raw) is bytes
        value = self._values.get(raw) if known else None
        if value is None:
            value = bytes(raw).decode("latin-1")
            if (
                known
                and len(raw) <= self.max_shared_length
                and len(self._values) < self.max_values
                and b"boundary=" not in raw  # a multipart content-type: new with each upload
            ):
                self._values[raw] = value
        return value
