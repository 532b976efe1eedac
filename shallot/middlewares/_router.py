"""The route table of ``wrap_routes`` (``routing``): a ``Router`` compiled once from the list
of routes, checked entry by entry, into a dict of fully static paths plus a trie of path
segments for the paths with ``{name}`` parameters. A lookup walks the request path one segment
at a time, trying the static child before the parameter child and backing up when a branch
dead-ends, so its cost depends on the depth of the path, never on the number of routes. Pure
and synchronous (SPEC §6, issue 4).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from .._checks import check_handler
from .._types import Handler
from ._reverse import RouteNames

__all__ = ["HTTP_METHODS", "RouteMatch", "Router"]

#: The methods a route may list: the HTTP verbs of RFC 9110 §9 and PATCH, plus ``"WS"``.
HTTP_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
_METHODS = HTTP_METHODS | {"WS"}


class RouteMatch(NamedTuple):
    """A successful lookup: the route's handler, its arguments and its pattern."""

    handler: Handler
    args: tuple[str, ...]
    route: str


class _Node:
    """One trie node: a path prefix. ``methods`` is set when a route ends here."""

    __slots__ = ("allowed", "methods", "param", "static")

    def __init__(self) -> None:
        self.static: dict[str, _Node] = {}
        self.param: _Node | None = None
        self.methods: dict[str, tuple[Handler, str]] | None = None
        self.allowed: frozenset[str] = frozenset()


#: Makes a RouteMatch from a tuple without the Python-level ``__new__`` of a NamedTuple.
_match = tuple.__new__


def _split(path: str) -> list[str] | None:
    """Returns the segments of a request path, trailing slashes ignored (``"/"`` has none),
    or None for a path that does not start with ``/`` (such as ``*``)."""
    path = path.rstrip("/")
    if not path:
        return []
    if path[0] != "/":
        return None
    return path[1:].split("/")


class Router:
    """A compiled routing table: ``lookup`` finds the handler of a method and path.

    Raises (from the constructor):
        TypeError: an entry is not a ``(path, methods, handler)`` triple, or a part of it has
            the wrong type (methods given as one string, a handler that is not callable), or
            its handler certainly fails when called: an undecorated async generator, a
            function that cannot take the route's arguments (see ``_checks.check_handler``).
        ValueError: a path or method is malformed, or two entries claim the same path and
            method. Each message names the entry.
    """

    __slots__ = ("_names", "_root", "_static")

    def __init__(self, routes: Iterable[Any]) -> None:
        if isinstance(routes, (str, bytes, dict)) or not isinstance(routes, Iterable):
            raise TypeError(f"routes must be a list of (path, methods, handler), not {routes!r}")
        self._root = _Node()
        #: normalised static path -> method -> (handler, pattern): the one-dict-lookup case.
        self._static: dict[str, dict[str, RouteMatch]] = {}  # filled in once the trie is built
        static_nodes: dict[str, _Node] = {}
        owners: dict[tuple[int, str], str] = {}  # (id of end node, method) -> entry text
        ends: list[_Node] = []
        named: list[tuple[str, str]] = []  # (route name, pattern), for url_for
        for index, entry in enumerate(routes):
            name = f"route #{index} {entry!r}"
            pattern, methods, handler, route_name = _check_entry(name, entry)
            if route_name is not None:
                named.append((route_name, pattern))
            node = self._root
            is_static = True
            segments, params = _pattern_segments(name, pattern)
            where = f"route #{index} {' '.join(methods)} {pattern}"
            check_handler(where, handler, params, websocket="WS" in methods)
            for segment in segments:
                if segment is None:
                    is_static = False
                    if node.param is None:
                        node.param = _Node()
                    node = node.param
                else:
                    node = node.static.setdefault(segment, _Node())
            if node.methods is None:
                node.methods = {}
                ends.append(node)
            for method in methods:
                key = (id(node), method)
                if key in owners:
                    raise ValueError(
                        f"{name}: {method} {pattern} is already routed by {owners[key]}"
                    )
                owners[key] = name
                node.methods[method] = (handler, pattern)
            if is_static:
                static_nodes[pattern.rstrip("/")] = node
        for node in ends:
            assert node.methods is not None
            if "GET" in node.methods and "HEAD" not in node.methods:
                node.methods["HEAD"] = node.methods["GET"]  # HEAD is GET without the body
            node.allowed = frozenset(node.methods) & HTTP_METHODS
        for path, node in static_nodes.items():  # static hits need no work per request
            assert node.methods is not None
            self._static[path] = {
                method: RouteMatch(handler, (), pattern)
                for method, (handler, pattern) in node.methods.items()
            }
        self._names = RouteNames(named)

    def url_for(self, name: str, /, **params: object) -> str:
        """Returns the path of the route called ``name`` (the fourth member of its entry),
        with its ``{param}`` segments filled from ``params``; see ``RouteNames.url_for``.

        Raises:
            LookupError: no route is called ``name``.
            ValueError: ``params`` lacks a parameter of the path or has one it does not, or a
                value cannot be one segment of the decoded path (it holds a ``/``, say).
        """
        return self._names.url_for(name, **params)

    def lookup(self, method: str, path: str) -> RouteMatch | None:
        """Returns the route for ``method`` and ``path``, or None when there is none.

        Where several routes match, the one whose leftmost differing segment is static wins.
        """
        static = self._static.get(path.rstrip("/"))
        if static is not None:  # a fully static route outranks any route with parameters
            hit = static.get(method)
            if hit is not None:
                return hit
        return self._walk(method, path)

    def _walk(self, method: str, path: str) -> RouteMatch | None:
        # lookup() past the table of static routes: the routes with parameters.
        segments = _split(path)
        if segments is None:
            return None
        args: list[str] = []
        # The first path a depth-first search would take (static segments first), walked
        # without recursion: it is the answer unless it dead-ends.
        node = self._root
        for segment in segments:
            child = node.static.get(segment)
            if child is None:
                child = node.param if segment else None
                if child is None:
                    break
                args.append(segment)
            node = child
        else:
            found = node.methods.get(method) if node.methods is not None else None
            if found is not None:
                return _match(RouteMatch, (found[0], tuple(args), found[1]))
        args.clear()
        found = _find(self._root, segments, 0, method, args)
        if found is None:
            return None
        return _match(RouteMatch, (found[0], tuple(args), found[1]))

    def handlers(self) -> list[Handler]:
        """Returns every routed handler, once each, in no particular order."""
        found: dict[int, Handler] = {}
        nodes = [self._root]
        while nodes:
            node = nodes.pop()
            for handler, _ in (node.methods or {}).values():
                found.setdefault(id(handler), handler)
            nodes.extend(node.static.values())
            if node.param is not None:
                nodes.append(node.param)
        return list(found.values())

    def allowed_methods(self, path: str) -> list[str] | None:
        """Returns the sorted HTTP methods routed for ``path`` under any pattern (``"WS"``
        left out, ``HEAD`` included with ``GET``), or None when no route matches the path."""
        segments = _split(path)
        if segments is None:
            return None
        ends: list[_Node] = []
        _collect(self._root, segments, 0, ends)
        if not ends:
            return None
        return sorted(frozenset[str]().union(*(node.allowed for node in ends)))


def _find(
    node: _Node, segments: list[str], depth: int, method: str, args: list[str]
) -> tuple[Handler, str] | None:
    if depth == len(segments):
        return node.methods.get(method) if node.methods is not None else None
    segment = segments[depth]
    child = node.static.get(segment)
    if child is not None:
        found = _find(child, segments, depth + 1, method, args)
        if found is not None:
            return found
    if node.param is not None and segment:  # a parameter takes one non-empty segment
        args.append(segment)
        found = _find(node.param, segments, depth + 1, method, args)
        if found is not None:
            return found
        args.pop()  # dead end: back up and let the caller try its other branch
    return None


def _collect(node: _Node, segments: list[str], depth: int, ends: list[_Node]) -> None:
    if depth == len(segments):
        if node.methods is not None:
            ends.append(node)
        return
    segment = segments[depth]
    child = node.static.get(segment)
    if child is not None:
        _collect(child, segments, depth + 1, ends)
    if node.param is not None and segment:
        _collect(node.param, segments, depth + 1, ends)


def _check_entry(name: str, entry: Any) -> tuple[str, list[str], Handler, str | None]:
    if (
        isinstance(entry, (str, bytes))
        or not isinstance(entry, (tuple, list))
        or len(entry) not in (3, 4)
    ):
        raise TypeError(
            f"{name}: an entry must be a (path, methods, handler) triple, or "
            "(path, methods, handler, name) for a named route"
        )
    pattern, methods, handler = entry[:3]
    route_name = entry[3] if len(entry) == 4 else None
    if route_name is not None and (not isinstance(route_name, str) or not route_name):
        raise TypeError(f"{name}: a route name must be a non-empty str, not {route_name!r}")
    if not isinstance(pattern, str):
        raise TypeError(f"{name}: the path must be a str, not {type(pattern).__name__}")
    if isinstance(methods, (str, bytes)) or not isinstance(methods, Iterable):
        raise TypeError(f"{name}: methods must be a list of method names such as ['GET']")
    checked: list[str] = []
    for method in methods:
        if not isinstance(method, str) or method.upper() not in _METHODS:
            raise ValueError(
                f"{name}: unknown method {method!r}; use one of {', '.join(sorted(_METHODS))}"
            )
        if method.upper() not in checked:
            checked.append(method.upper())
    if not checked:
        raise ValueError(f"{name}: the method list is empty")
    if not callable(handler):
        raise TypeError(f"{name}: the handler {handler!r} is not callable")
    return pattern, checked, handler, route_name


def _pattern_segments(name: str, pattern: str) -> tuple[list[str | None], list[str]]:
    """Returns the segments of a route pattern (a str for a static one, None for ``{name}``)
    and its parameters' names, in order."""
    if not pattern.startswith("/"):
        raise ValueError(f"{name}: the path must start with '/'")
    trimmed = pattern.rstrip("/")
    segments: list[str | None] = []
    seen: list[str] = []
    if not trimmed:
        return segments, seen
    for segment in trimmed[1:].split("/"):
        if not segment:
            raise ValueError(f"{name}: the path has an empty segment ('//')")
        if segment.startswith("{") and segment.endswith("}"):
            parameter = segment[1:-1]
            if not parameter or "{" in parameter or "}" in parameter:
                raise ValueError(f"{name}: malformed parameter {segment!r}; write {{name}}")
            if parameter in seen:
                raise ValueError(f"{name}: the parameter {{{parameter}}} appears twice")
            seen.append(parameter)
            segments.append(None)
        elif "{" in segment or "}" in segment:
            raise ValueError(
                f"{name}: malformed segment {segment!r}; a parameter is a whole "
                "segment written {name}"
            )
        else:
            segments.append(segment)
    return segments, seen
