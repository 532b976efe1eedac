"""Reverse routing: the path of a named route, its ``{name}`` segments filled in.

A route is named by a fourth member of its table entry, ``(path, methods, handler, name)``;
three-member entries stay unnamed. ``Router`` checks the names when it is built and answers
``url_for`` from the table kept here: pure string work, no lookup in the trie.

Routing matches the path the server has already percent-decoded (ASGI's ``path``), and a
``{name}`` matches one segment of it: a value is percent-encoded so that it decodes back to
itself, and one that cannot come back as one segment (a ``/`` in it, ``.`` or ``..``) is
refused rather than turned into a URL that routes elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote

__all__ = ["RouteNames"]

#: Characters a path segment keeps as they are (RFC 3986 §3.3 pchar, without ``/``).
_SEGMENT_SAFE = "!$&'()*+,;=:@-._~"


class RouteNames:
    """The named routes of one table: name -> the pattern's segments.

    Raises (from the constructor):
        ValueError: a name is given to two routes (each message names both patterns).
    """

    __slots__ = ("_patterns",)

    def __init__(self, named: Iterable[tuple[str, str]]) -> None:
        self._patterns: dict[str, tuple[str, list[str]]] = {}
        for name, pattern in named:
            if name in self._patterns:
                raise ValueError(
                    f"the route name {name!r} is given to {self._patterns[name][0]!r} "
                    f"and to {pattern!r}"
                )
            trimmed = pattern.rstrip("/")
            self._patterns[name] = (pattern, trimmed[1:].split("/") if trimmed else [])

    def url_for(self, name: str, /, **params: object) -> str:
        """Returns the path of the route called ``name``, each ``{param}`` replaced by the
        string of ``params[param]``, percent-encoded as one path segment.

        Raises:
            LookupError: no route is called ``name``.
            ValueError: a parameter of the pattern is missing, or its value is not one
                segment (empty, ``.``, ``..``, or holding a ``/``), or ``params`` holds one
                the pattern does not have.
        """
        found = self._patterns.get(name)
        if found is None:
            known = ", ".join(sorted(self._patterns)) or "none"
            raise LookupError(f"url_for: no route is called {name!r} (named routes: {known})")
        pattern, segments = found
        parts: list[str] = []
        used: set[str] = set()
        for segment in segments:
            if not (segment.startswith("{") and segment.endswith("}")):
                parts.append(segment)
                continue
            parameter = segment[1:-1]
            if parameter not in params:
                raise ValueError(f"url_for({name!r}): {pattern!r} needs {parameter}=")
            value = str(params[parameter])
            if not value:
                raise ValueError(f"url_for({name!r}): {parameter}= must not be empty")
            _check_segment(name, pattern, parameter, value)
            used.add(parameter)
            parts.append(quote(value, safe=_SEGMENT_SAFE))
        unknown = params.keys() - used
        if unknown:
            raise ValueError(
                f"url_for({name!r}): {pattern!r} has no parameter(s) {', '.join(sorted(unknown))}"
            )
        return "/" + "/".join(parts)


def _check_segment(name: str, pattern: str, parameter: str, value: str) -> None:
    # No encoding of these comes back as the one segment a {parameter} matches: the server
    # decodes %2F to "/" before routing sees the path, and clients resolve "." and ".."
    # segments away (RFC 3986 §5.2.4; browsers take %2E for "." too).
    if "/" in value:
        problem = (
            f"holds a '/', and {{{parameter}}} in {pattern!r} matches one path segment "
            "(the server decodes %2F to '/' before routing)"
        )
    elif value in (".", ".."):
        problem = "is a dot segment, which clients resolve away (RFC 3986 §5.2.4)"
    else:
        return
    raise ValueError(
        f"url_for({name!r}): {parameter}={value!r} {problem}; pass such a value in the query string"
    )
