"""One HTTP request end to end: read it (``_request``), call the handler, and turn the
response dict into ``http.response.*`` messages, a body at once or a stream chunk by chunk.

The hot path of a plain request (no body announced, a ``body`` response) opens no task group
and no timeout scope: a request without ``content-length`` or ``transfer-encoding`` has no body
(RFC 9112 §6.3), so the server already holds its one ``http.request`` message, and a small
response body fits the socket buffer. Timeouts and the disconnect watcher are paid only where
they mean something: a body still arriving, a large body, a ``stream``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import anyio

from ._request import (
    ClientGone,
    Limits,
    Refused,
    bodiless,
    plain,
    read_body,
)
from ._types import Handler, Message, Receive, Scope, Send

logger = logging.getLogger("shallot")

#: Bodies up to this size are sent without a timeout scope: they fit the socket buffer.
_SMALL_BODY = 64 * 1024
#: Bound on awaiting a stream's own cleanup (its ``finally``) after it was stopped.
_CLEANUP_TIMEOUT = 5.0


class InvalidResponse(Exception):
    """A handler returned something shallot cannot send."""


INTERNAL_ERROR = plain(500, "Internal Server Error")
SERVICE_UNAVAILABLE = plain(503, "Service Unavailable")


def _encode_headers(headers: Any) -> tuple[list[tuple[bytes, bytes]], bool]:
    """Returns the headers as ASGI pairs and whether a content-length is among them."""
    items = headers.items() if isinstance(headers, dict) else headers
    raw: list[tuple[bytes, bytes]] = []
    has_length = False
    for name, value in items:
        key = name.encode("latin-1") if type(name) is str else bytes(name)
        if type(value) is str or isinstance(value, str):
            # latin-1 is what HTTP carries; shallot 2.0 sent UTF-8, which servers pass on as
            # obs-text (RFC 9110 §5.5), so values latin-1 cannot hold keep working.
            try:
                data = value.encode("latin-1")
            except UnicodeEncodeError:
                data = value.encode()
        elif isinstance(value, (bytes, bytearray)):
            data = bytes(value)
        elif isinstance(value, int):  # content-length given as a number
            data = str(value).encode()
        else:
            raise InvalidResponse(f"header {name!r} has a {type(value).__name__} value")
        if len(key) == 14 and key.lower() == b"content-length":
            has_length = True
        raw.append((key, data))
    return raw, has_length


def prepare(response: Any) -> tuple[int, list[tuple[bytes, bytes]], bytes | None, Any]:
    """Returns (status, ASGI headers, body, stream) of a response dict.

    Raises:
        InvalidResponse: it is not a response shallot can send.
    """
    if type(response) is dict and "stream" not in response:
        # The common shape (int status, str->str header dict, bytes body) in one pass.
        status = response.get("status")
        headers, body = response.get("headers"), response.get("body")
        if type(status) is int and 200 <= status <= 999 and type(body) is bytes:
            if headers is None:
                return status, [(b"content-length", b"%d" % len(body))], body, None
            if type(headers) is dict:
                raw = []
                length = status not in (204, 304)  # whether a content-length is to be added
                try:
                    for key, value in headers.items():
                        if len(key) == 14 and key.lower() == "content-length":
                            length = False
                        raw.append((key.encode("latin-1"), value.encode("latin-1")))
                except (AttributeError, TypeError, UnicodeEncodeError):
                    pass  # not all str, or not latin-1: the general path below
                else:
                    if length:
                        raw.append((b"content-length", b"%d" % len(body)))
                    return status, raw, body, None
    if not isinstance(response, dict):
        raise InvalidResponse(f"returned {response!r}, not a response dict")
    status = response.get("status")
    if type(status) is not int or not 100 <= status <= 999:
        raise InvalidResponse(f"returned status {status!r}; it must be an int from 100 to 999")
    try:
        headers, has_length = _encode_headers(response.get("headers") or ())
    except (UnicodeEncodeError, ValueError, TypeError) as error:
        raise InvalidResponse(f"returned unusable headers: {error}") from None
    stream = response.get("stream")
    if stream is not None:
        if not hasattr(stream, "__aiter__"):
            raise InvalidResponse(f"returned a stream that is not async iterable: {stream!r}")
        return status, headers, None, stream
    body = response.get("body")
    if body is None:
        body = b""
    elif isinstance(body, str):
        body = body.encode()
    elif isinstance(body, (bytearray, memoryview)):
        body = bytes(body)
    elif not isinstance(body, bytes):
        raise InvalidResponse(f"returned a {type(body).__name__} body; it must be bytes")
    if not has_length and status >= 200 and status not in (204, 304):
        headers.append((b"content-length", str(len(body)).encode()))
    return status, headers, body, None


async def send_body(
    send: Send,
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    head: bool,
    limits: Limits,
) -> None:
    """Sends a whole-body response. A body too large for the socket buffer is sent under the
    response timeout, so a client that stopped reading cannot hold the task forever."""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    if head or len(body) <= _SMALL_BODY:
        await send(
            {"type": "http.response.body", "body": b"" if head else body, "more_body": False}
        )
        return
    with anyio.move_on_after(limits.response_timeout) as timeout:
        await send({"type": "http.response.body", "body": body, "more_body": False})
    if timeout.cancelled_caught:
        logger.info("client stopped reading; response abandoned after %ss", limits.response_timeout)


async def send_stream(
    send: Send,
    receive: Receive,
    status: int,
    headers: list[tuple[bytes, bytes]],
    stream: AsyncIterable[Any],
    head: bool,
    limits: Limits,
    handler: Handler,
) -> None:
    """Sends a streamed response chunk by chunk, stopping when the client disconnects.

    The first chunk is read before the response starts, so a stream that fails at once still
    gets a 500; the disconnect watcher runs from the start, so a stream that waits long for its
    first chunk is stopped too. Each send is bounded by the response timeout, never the
    stream's whole life. Whatever happens, the stream is closed (its ``finally`` runs) before
    this returns.
    """
    iterator = stream.__aiter__()
    try:
        if head:
            await send_body(send, status, headers, b"", True, limits)
            return
        async with anyio.create_task_group() as tg:
            tg.start_soon(_cancel_on_disconnect, receive, tg.cancel_scope)
            await _pump(send, iterator, status, headers, limits, handler)
            tg.cancel_scope.cancel()
    finally:
        await _close_iterator(iterator)  # noqa: ASYNC102  # it shields itself, with a timeout


async def _pump(
    send: Send,
    iterator: AsyncIterator[Any],
    status: int,
    headers: list[tuple[bytes, bytes]],
    limits: Limits,
    handler: Handler,
) -> None:
    # Runs inside the watcher's task group: nothing may escape as an exception, or it would
    # leave wrapped in an ExceptionGroup, past serve_http's boundary.
    try:
        chunk = await _next_chunk(iterator)
    except Exception:
        logger.exception("stream of handler %s failed before its first chunk", _name(handler))
        error_status, error_headers, error_body, _ = prepare(INTERNAL_ERROR)
        try:
            await send_body(send, error_status, error_headers, error_body or b"", False, limits)
        except OSError:  # ASGI 2.4: the client has gone
            pass
        return
    try:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        while chunk is not None:
            if chunk:
                with anyio.move_on_after(limits.response_timeout) as timeout:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                if timeout.cancelled_caught:
                    logger.info(
                        "client stopped reading; stream abandoned after %ss",
                        limits.response_timeout,
                    )
                    return
            try:
                chunk = await _next_chunk(iterator)
            except Exception:
                # The response has started: ending without the final message aborts it, so the
                # client sees a truncated response rather than a complete-looking one.
                logger.exception("stream of handler %s failed mid-response", _name(handler))
                return
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except OSError:  # ASGI 2.4: send() may raise once the client has gone
        logger.debug("client went away while handler %s streamed", _name(handler))


async def _next_chunk(iterator: AsyncIterator[Any]) -> bytes | None:
    try:
        chunk = await iterator.__anext__()
    except StopAsyncIteration:
        return None
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, str):
        return chunk.encode()
    if isinstance(chunk, (bytearray, memoryview)):
        return bytes(chunk)
    raise InvalidResponse(f"stream yielded a {type(chunk).__name__}; it must yield bytes")


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


async def _close_iterator(iterator: Any) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is None:
        return
    with anyio.CancelScope(shield=True), anyio.move_on_after(_CLEANUP_TIMEOUT):
        try:
            await aclose()
        except Exception:
            logger.exception("closing a response stream failed")


def _after_body(receive: Receive) -> Receive:
    """Returns ``receive`` past the request's (empty, unread) ``http.request`` message."""
    skipped = False

    async def receive_after_body() -> Message:
        nonlocal skipped
        message = await receive()
        if not skipped:
            skipped = True
            if message["type"] == "http.request" and not message.get("more_body", False):
                message = await receive()
        return message

    return receive_after_body


def _name(handler: Any) -> str:
    return getattr(handler, "__qualname__", None) or repr(handler)


async def serve_http(
    scope: Scope,
    receive: Receive,
    send: Send,
    handler: Handler,
    config: dict[str, Any],
    limits: Limits,
) -> None:
    """Answers one HTTP request: read it, call the handler, send what it returned.

    This is the error boundary of a request: a handler error is logged once and answered
    with 500, so the server keeps serving.
    """
    headers = limits.decode_headers(scope.get("headers", ()))
    try:
        if bodiless(scope, headers):
            # Nothing to receive, not even the one empty http.request message: fetching it
            # costs a trip through the server's queue (on trio, a scheduler round) for nothing;
            # a stream's disconnect watch skips it later.
            body = b""
            unread = True
        else:
            body = await read_body(scope, headers, receive, limits)
            unread = False
    except Refused as refused:
        status, raw, data, _ = prepare(refused.response)
        await send_body(send, status, raw, data or b"", False, limits)
        return
    except ClientGone:
        return
    method = scope["method"]
    request = dict(scope)  # build_request, inlined: this is the hot path
    request["headers"] = headers
    request["headers_list"] = scope.get("headers", [])
    request["body"] = body
    request["method"] = method
    request["config"] = config
    try:
        result = await handler(request)
    except Exception:
        logger.exception("handler %s raised", _name(handler))
        result = INTERNAL_ERROR
    if type(result) is not dict and callable(result):
        # raw takeover (SPEC §1): the body is always read by then, left unread or not
        await result(_after_body(receive) if unread else receive, send)
        return
    try:
        status, raw, data, stream = prepare(result)
    except InvalidResponse as error:
        logger.error("handler %s %s", _name(handler), error)
        status, raw, data, stream = prepare(INTERNAL_ERROR)
    try:
        if stream is None:
            if data is not None and len(data) <= _SMALL_BODY and method != "HEAD":
                await send({"type": "http.response.start", "status": status, "headers": raw})
                await send({"type": "http.response.body", "body": data, "more_body": False})
                return
            await send_body(send, status, raw, data or b"", method == "HEAD", limits)
        else:
            await send_stream(send, receive, status, raw, stream, method == "HEAD", limits, handler)
    except OSError:  # ASGI 2.4: send() may raise once the client has gone
        logger.debug("client went away while handler %s answered", _name(handler))
