"""Header helpers for middlewares that read or change response headers.

A response's ``headers`` may be a ``dict`` or a list of ``(name, value)`` pairs (SPEC §1), names
in any case, as ``str`` or ``bytes``, values ``str``, ``bytes`` or ``int``. These functions read
and change headers in either form without mutating the caller's object: each change returns a
new dict (for a dict or ``None``) or a new list (for a list or tuple of pairs). They also parse
the comma-separated list grammar of RFC 9110 §5.6.1 that several request headers share.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeAlias

#: What a response's ``headers`` may hold.
Headers: TypeAlias = Mapping[Any, Any] | Iterable[tuple[Any, Any]] | None
#: What the helpers return: the same form as their input (a dict for ``None``).
NewHeaders: TypeAlias = dict[Any, Any] | list[tuple[Any, Any]]


def _text(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    return str(value)


def _items(headers: Headers) -> Iterable[tuple[Any, Any]]:
    if headers is None:
        return ()
    if isinstance(headers, Mapping):
        return headers.items()
    return headers


def get_header(headers: Headers, name: str) -> str | None:
    """Returns the value of header ``name`` (any case), repeats joined with ``", "``.

    Returns:
        The value as text, or ``None`` when the header is absent.
    """
    name = name.lower()
    values = [_text(value) for key, value in _items(headers) if _text(key).lower() == name]
    return ", ".join(values) if values else None


def with_headers(headers: Headers, changes: Mapping[str, str | None]) -> NewHeaders:
    """Returns a copy of ``headers`` in which each header named in ``changes`` (any case)
    is replaced by the given value, or removed when the value is ``None``.

    Returns:
        A new dict when ``headers`` is a mapping or ``None``, else a new list of pairs. Set
        headers get lower-case names and come last.
    """
    names = {name.lower() for name in changes}
    kept = [(key, value) for key, value in _items(headers) if _text(key).lower() not in names]
    kept.extend((name.lower(), value) for name, value in changes.items() if value is not None)
    if headers is None or isinstance(headers, Mapping):
        return dict(kept)
    return kept


def split_list(value: str | None) -> list[str]:
    """Returns the members of a comma-separated header list, stripped, empty ones dropped
    (RFC 9110 §5.6.1).

    Returns:
        The members in order; ``[]`` for ``None``.
    """
    if not value:
        return []
    return [member.strip() for member in value.split(",") if member.strip()]


def add_vary(headers: Headers, *names: str) -> NewHeaders:
    """Returns a copy of ``headers`` whose ``vary`` header also lists ``names``, keeping what
    it listed (RFC 9110 §12.5.5). A ``*`` already there says everything, so it stays alone.

    Returns:
        The headers in the same form as :func:`with_headers` returns them.
    """
    current = split_list(get_header(headers, "vary"))
    if "*" in current:
        return with_headers(headers, {"vary": "*"})
    known = {member.lower() for member in current}
    for name in names:
        if name.lower() not in known:
            current.append(name)
            known.add(name.lower())
    return with_headers(headers, {"vary": ", ".join(current)})


def append_header(headers: Headers, name: str, value: str) -> list[tuple[Any, Any]]:
    """Returns a copy of ``headers`` as a list of pairs with ``(name, value)`` added last,
    for a header that may repeat (``set-cookie``, RFC 6265 §3).

    Returns:
        A new list of pairs, whatever form ``headers`` had.
    """
    pairs = list(_items(headers))
    pairs.append((name, value))
    return pairs
