"""Parameters: ``wrap_parameters`` parses the query string and url-encoded form bodies.

It adds ``query_params``, ``form_params`` and their merge ``params`` to the request, each a
``dict[str, list[str]]`` as ``urllib.parse.parse_qs`` builds it. Input that cannot be decoded in
the configured encoding, or that breaks the grammar under ``strict_parsing``, is the client's
mistake and is answered with 400, never a 500 (SPEC §3, §6).
"""

from __future__ import annotations

from urllib.parse import parse_qs, quote_from_bytes

from .._types import Handler, HandlerResult, Middleware, Next, Request
from ..response import respond400

__all__ = ["wrap_parameters"]

_FORM = "application/x-www-form-urlencoded"
#: Printable ASCII stays as it is when raw bytes are percent-encoded before parsing.
_PRINTABLE = "".join(chr(code) for code in range(0x20, 0x7F))


def _as_text(data: bytes | str) -> str:
    """Returns a query string or form body as ASCII text, raw non-ASCII bytes percent-encoded,
    so that parse_qs decodes them with the configured encoding like escaped ones."""
    if isinstance(data, str):
        return data
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:  # some clients send raw UTF-8 instead of escaping it
        return quote_from_bytes(data, safe=_PRINTABLE)


def _is_form(request: Request) -> bool:
    content_type = request.get("headers", {}).get("content-type", "")
    return str(content_type).partition(";")[0].strip().lower() == _FORM


def wrap_parameters(
    keep_blank_values: bool = False, strict_parsing: bool = False, encoding: str = "utf-8"
) -> Middleware:
    """Returns a middleware that adds ``query_params``, ``form_params`` and ``params``.

    ``form_params`` is parsed only from ``application/x-www-form-urlencoded`` bodies of HTTP
    requests; otherwise it keeps the ``form_params`` a middleware outside it set
    (``wrap_multipart``), or is ``{}``. ``params`` holds both, a name's query values first. The
    options are those of ``urllib.parse.parse_qs``; ``encoding`` decodes percent-escapes.

    Returns:
        The middleware. It answers 400 when the input cannot be decoded or, with
        ``strict_parsing``, is not a valid query string.

    Raises:
        TypeError: a flag is not a bool or ``encoding`` not a str.
        ValueError: ``encoding`` is not a text encoding Python knows.
    """
    for option, value in (
        ("keep_blank_values", keep_blank_values),
        ("strict_parsing", strict_parsing),
    ):
        if not isinstance(value, bool):
            raise TypeError(f"wrap_parameters: {option} must be a bool, not {value!r}")
    if not isinstance(encoding, str):
        raise TypeError(f"wrap_parameters: encoding must be a str, not {encoding!r}")
    try:
        "".encode(encoding)  # a LookupError for unknown codecs and for bytes-to-bytes ones
    except LookupError:
        raise ValueError(f"wrap_parameters: {encoding!r} is not a text encoding") from None

    def parse(text: str) -> dict[str, list[str]]:
        return parse_qs(
            text,
            keep_blank_values=keep_blank_values,
            strict_parsing=strict_parsing,
            encoding=encoding,
            errors="strict",
        )

    def middleware(next_middleware: Next) -> Next:
        async def add_parameters(handler: Handler, request: Request) -> HandlerResult:
            try:
                query = parse(_as_text(request.get("query_string") or b""))
            except ValueError:  # UnicodeDecodeError is a ValueError too
                return respond400("Bad Request: malformed query string")
            # Fields a middleware outside this one parsed (wrap_multipart) are kept.
            form: dict[str, list[str]] = request.get("form_params") or {}
            if request.get("method") != "WS" and _is_form(request):
                try:
                    form = parse(_as_text(request.get("body") or b""))
                except ValueError:
                    return respond400("Bad Request: malformed form body")
            params = {name: list(values) for name, values in query.items()}
            for name, values in form.items():
                params[name] = params.get(name, []) + values
            return await next_middleware(
                handler,
                {
                    **request,
                    "query_params": query,
                    "form_params": form,
                    "params": params,
                },
            )

        return add_parameters

    return middleware
