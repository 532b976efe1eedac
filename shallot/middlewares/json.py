"""JSON bodies: ``wrap_json`` parses the body of a JSON request into ``request["json"]``.

A body counts as JSON when its content type is ``application/json`` or any
``application/<name>+json`` (RFC 6839 §3.1), parameters such as ``charset`` tolerated. The body
is read as UTF-8 (RFC 8259 §8.1) and parsed by the rule websocket messages follow
(``_ws_messages.json_value``). A body that is not valid JSON, including invalid UTF-8, ``NaN``
or ``Infinity`` (which Python's parser takes and RFC 8259 does not), and nesting too deep to
parse, is the client's mistake: 400 ``Malformed JSON``, never a 500.
``wrap_json`` works both bare, as in shallot 2.0 (``apply_middleware(wrap_json)``), and as the
factory SPEC §6 describes (``wrap_json(fail_on_missing_body=True)``).
"""

from __future__ import annotations

from typing import Any, overload

from .._types import Handler, HandlerResult, Middleware, Next, Request
from .._ws_messages import json_value
from ..response import respond400

__all__ = ["wrap_json"]


def _is_json(request: Request) -> bool:
    content_type = request.get("headers", {}).get("content-type")
    if not content_type:
        return False
    media_type = str(content_type).partition(";")[0].strip().lower()
    if media_type == "application/json":
        return True
    kind, _, subtype = media_type.partition("/")
    return kind == "application" and subtype.endswith("+json") and len(subtype) > 5


def _parse(body: bytes) -> Any:
    """Returns the JSON value of ``body``.

    Raises:
        ValueError: the body is not UTF-8 JSON (``NaN``, ``Infinity`` and nesting too deep
            to parse included).
    """
    return json_value(body.decode("utf-8-sig"))  # RFC 8259 §8.1 lets a parser skip a BOM


def _build(fail_on_missing_body: bool) -> Middleware:
    if not isinstance(fail_on_missing_body, bool):
        raise TypeError(
            f"wrap_json: fail_on_missing_body must be a bool, not {fail_on_missing_body!r}"
        )

    def middleware(next_middleware: Next) -> Next:
        async def add_json(handler: Handler, request: Request) -> HandlerResult:
            data: Any = None
            if request.get("method") != "WS" and _is_json(request):
                body = request.get("body") or b""
                if body:
                    try:
                        data = _parse(bytes(body))
                    except ValueError:  # JSONDecodeError and UnicodeDecodeError are ones
                        return respond400("Malformed JSON")
                elif fail_on_missing_body:  # shallot 2.0 gave this answer too
                    return respond400("Malformed JSON")
            return await next_middleware(handler, {**request, "json": data})

        return add_json

    return middleware


@overload
def wrap_json(fail_on_missing_body: Next, /) -> Next: ...


@overload
def wrap_json(fail_on_missing_body: bool = False) -> Middleware: ...


def wrap_json(fail_on_missing_body: bool | Next = False) -> Middleware | Next:
    """Returns a middleware that sets ``request["json"]``: the parsed body of a JSON request,
    None for any other request (and for an empty body, unless ``fail_on_missing_body``).

    Used bare (``apply_middleware(wrap_json)``), it is itself that middleware, with the
    default options: its argument is then the next middleware, and it returns the wrapped one.

    Returns:
        The middleware, or the wrapped next middleware when used bare. The middleware answers
        400 ``Malformed JSON`` for a body that is not UTF-8 JSON, and for an empty one when
        ``fail_on_missing_body`` is set.

    Raises:
        TypeError: ``fail_on_missing_body`` is neither a bool nor a middleware.
    """
    if callable(fail_on_missing_body):  # bare use: the argument is the next middleware
        return _build(False)(fail_on_missing_body)
    return _build(fail_on_missing_body)
