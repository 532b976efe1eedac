"""Multipart forms: ``wrap_multipart`` reads ``multipart/form-data`` bodies as they arrive,
with python-multipart (the ``multipart`` extra), into form fields and uploaded files.

Its rule (``streams_body``, see ``_body``) tells the server to stream multipart bodies, so an
upload never sits whole in memory: each chunk goes from ASGI ``receive`` through the parser
into the part's spooled temporary file. Fields join ``params`` as url-encoded forms do with
``wrap_parameters``; files go to ``request["files"]``. Every file is closed (and its disk space
freed) when the request ends: when the handler returns, when it fails, when the client leaves,
or, for a ``stream`` response, when the stream ends (issue 15).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import anyio

from .._body import BodyStream
from .._request import Refused
from .._types import Handler, HandlerResult, Middleware, Next, Request

if TYPE_CHECKING:
    from .._multipart import FormReader

__all__ = ["wrap_multipart"]

_MIB = 1024 * 1024
#: How long closing a body stream may take once the form is read or abandoned.
_CLEANUP_TIMEOUT = 5.0
_MULTIPART = "multipart/form-data"


def _is_multipart(headers: dict[str, str]) -> bool:
    content_type = headers.get("content-type")
    return content_type is not None and (
        content_type[:19].lower() == _MULTIPART and content_type[19:20] in ("", ";", " ", "\t")
    )


def _streams_multipart(scope: Any, headers: dict[str, str]) -> bool:
    return _is_multipart(headers)


def _size(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"wrap_multipart: {name} must be a positive whole number, not {value!r}")
    return value


def wrap_multipart(
    *,
    max_file_size: int = 100 * _MIB,
    max_request_size: int = 100 * _MIB,
    max_parts: int = 1000,
    max_field_size: int = _MIB,
    spool_size: int = _MIB,
    temp_dir: str | os.PathLike[str] | None = None,
    encoding: str = "utf-8",
) -> Middleware:
    """Returns a middleware that parses ``multipart/form-data`` request bodies.

    It adds ``form_params`` (the text fields, ``dict[str, list[str]]``), ``files``
    (``dict[str, list[UploadedFile]]``) and merges the fields into ``params`` after the query
    values. Files are held in memory up to ``spool_size`` bytes each, then in ``temp_dir`` (the
    system's temporary folder by default). ``max_request_size`` bounds the whole body,
    ``max_file_size`` each file, ``max_field_size`` each text field and ``max_parts`` the
    number of parts; each is refused with 413 and a message naming it. A malformed body gets
    400. ``encoding`` decodes field names and values. Other requests pass through untouched.

    Returns:
        The middleware.

    Raises:
        ImportError: python-multipart is not installed (``pip install -e '.[multipart]'``).
        ValueError: a size is not a positive whole number, or ``encoding`` not a text encoding.
    """
    try:
        from .._multipart import FormLimits, FormReader, boundary_of
    except ImportError as error:  # pragma: no cover - the extra is part of the test setup
        raise ImportError(
            "wrap_multipart needs python-multipart: install shallot's 'multipart' extra "
            "(from a checkout: pip install -e '.[multipart]')"
        ) from error
    for name, value in (
        ("max_file_size", max_file_size),
        ("max_request_size", max_request_size),
        ("max_parts", max_parts),
        ("max_field_size", max_field_size),
        ("spool_size", spool_size),
    ):
        _size(name, value)
    try:
        "".encode(encoding)
    except (LookupError, TypeError):
        raise ValueError(f"wrap_multipart: {encoding!r} is not a text encoding") from None
    limits = FormLimits(max_file_size, max_field_size, max_parts, spool_size, temp_dir, encoding)

    def middleware(next_middleware: Next) -> Next:
        async def read_multipart(handler: Handler, request: Request) -> HandlerResult:
            headers = request.get("headers", {})
            if request.get("method") == "WS" or not _is_multipart(headers):
                return await next_middleware(handler, request)
            stream = request.get("body_stream")
            if not isinstance(stream, BodyStream):  # the body was read before (no rule)
                stream = BodyStream.of_bytes(request.get("body") or b"")
            stream.max_size = max_request_size
            reader: FormReader | None = None
            handed_over = False  # to a stream response, which closes the files when it ends
            try:
                reader = FormReader(boundary_of(headers["content-type"]), limits)
                async for chunk in stream:
                    reader.feed(chunk)
                    await reader.flush()
                await reader.finish()
                params = {name: list(values) for name, values in request.get("params", {}).items()}
                for name, values in reader.fields.items():
                    params[name] = params.get(name, []) + values
                response = await next_middleware(
                    handler,
                    {
                        **request,
                        "form_params": reader.fields,
                        "files": reader.files,
                        "params": params,
                    },
                )
                if isinstance(response, dict) and response.get("stream") is not None:
                    handed_over = True
                    return {**response, "stream": _closing(response["stream"], reader.close)}
                return response
            except Refused as refused:  # a malformed body or a broken limit
                return refused.response
            finally:  # also when the handler failed or the client left
                if reader is not None and not handed_over:
                    reader.close()

        return read_multipart

    middleware.streams_body = _streams_multipart  # type: ignore[attr-defined]
    return middleware


async def _closing(stream: Any, close: Callable[[], None]) -> AsyncIterator[Any]:
    """Yields what ``stream`` yields, then calls ``close``, however it ends."""
    try:
        async for chunk in stream:
            yield chunk
    finally:
        aclose = getattr(stream, "aclose", None)
        try:
            if aclose is not None:
                with anyio.CancelScope(shield=True), anyio.move_on_after(_CLEANUP_TIMEOUT):
                    await aclose()
        finally:
            close()
