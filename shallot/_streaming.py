"""A response sent within the response timeout: a whole body (``send_body``), or its
``stream`` chunk by chunk (``send_stream``), the chunks and the client's disconnect watched
together in one task group. Every failure of a stream ends well: a 500 before its first
chunk, a response cut short after it, logged once naming the route's handler
(``_failures``). ``_http`` calls them; a plain request's answer is sent there, inline.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

import anyio

from ._failures import handler_name, log_stream_failed
from ._prepare import InvalidResponse, prepare
from ._request import ClientGone, Limits, plain
from ._sending import AS_IS, StallWatch, send_all_within, send_within
from ._streams import as_bytes, close_stream
from ._types import Handler, Message, Receive, Scope, Send

logger = logging.getLogger("shallot")

#: One send of a response, bounded by the response timeout: False once it was abandoned.
Bounded = Callable[[Message], Awaitable[bool]]

INTERNAL_ERROR = plain(500, "Internal Server Error")


async def send_body(
    send: Send,
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    head: bool,
    limits: Limits,
    how: int,
) -> None:
    """Sends a whole-body response within the response timeout, so a client that stopped
    reading cannot hold the task forever (``how``: ``_sending.plan``'s word on ``send``)."""
    start = {"type": "http.response.start", "status": status, "headers": headers}
    end = {"type": "http.response.body", "body": b"" if head else body, "more_body": False}
    await send_all_within(send, (start, end), limits.response_timeout, how)


async def send_stream(
    send: Send,
    receive: Receive,
    scope: Scope,
    status: int,
    headers: list[tuple[bytes, bytes]],
    stream: AsyncIterable[Any],
    head: bool,
    limits: Limits,
    handler: Handler,
    how: int,
) -> None:
    """Sends a streamed response chunk by chunk, stopping when the client disconnects.

    The first chunk is read before the response starts, so a stream that fails at once still
    gets a 500; the disconnect watcher runs from the start, so a stream that waits long for its
    first chunk is stopped too. Each send is bounded by the response timeout, never the
    stream's whole life. Whatever happens, the stream is closed (its ``finally`` runs) before
    this returns. A stream that is also an async context manager (``shallot.sse``) is entered
    around the sending, so the tasks it runs end with the response; an error it raises as it
    exits is logged as a failure of the stream. Failures are logged naming the route's handler
    (``handler`` is the pile), the method and the path of ``scope``.

    The final message is sent after the watcher has stopped: in it the server ends the
    response, and may close the connection (``Connection: close``, HTTP/1.0) or make it idle,
    which reports a disconnect to ``receive``. Cancelled by the watcher in the middle of that,
    hypercorn's trio worker left the connection open for good (issue 13).
    """
    if not head and hasattr(stream, "__aenter__"):
        opener: Any = stream
        sent = False
        try:
            async with opener as opened:
                await send_stream(
                    send, receive, scope, status, headers, opened, head, limits, handler, how
                )
                sent = True
        except Exception as error:
            if not sent:  # the sending's own error (the client left, say): not the stream's
                raise
            log_stream_failed(scope, handler, "as the response ended", error)
        return
    iterator = stream.__aiter__()
    final: Message | None = None
    try:
        if head:
            await send_body(send, status, headers, b"", True, limits, how)
            return
        async with anyio.create_task_group() as tg:
            tg.start_soon(_cancel_on_disconnect, receive, tg.cancel_scope)
            if how == AS_IS:  # no scope can cut a send: a watch ends the stream instead
                stall = StallWatch(send, iterator, limits.response_timeout)
                tg.start_soon(stall.watch, tg.cancel_scope)
                bounded: Bounded = stall.send
            else:
                bounded = partial(send_within, send, seconds=limits.response_timeout, how=how)
            final = await _pump(bounded, iterator, scope, status, headers, handler)
            tg.cancel_scope.cancel()
    finally:
        await close_stream(iterator, "a response stream")  # noqa: ASYNC102  # it shields itself, with a timeout
    if final is not None:
        await send_within(send, final, limits.response_timeout, how)


async def _pump(
    bounded: Bounded,
    iterator: AsyncIterator[Any],
    scope: Scope,
    status: int,
    headers: list[tuple[bytes, bytes]],
    handler: Handler,
) -> Message | None:
    """Sends the start and the chunks of a stream with ``bounded`` (a send under the response
    timeout: False once abandoned); returns the final message, to be sent once the watcher has
    stopped, or None when the response is to end without it."""
    # Runs inside the watcher's task group: nothing may escape as an exception, or it would
    # leave wrapped in an ExceptionGroup, past serve_http's boundary.
    try:
        chunk = await _next_chunk(iterator)
    except ClientGone:  # it read the request's body, and the client left meanwhile
        return None
    except Exception as error:
        log_stream_failed(scope, handler, "before its first chunk", error)
        error_status, error_headers, error_body, _ = prepare(INTERNAL_ERROR)
        start = {"type": "http.response.start", "status": error_status, "headers": error_headers}
        try:
            if await bounded(start):
                return {"type": "http.response.body", "body": error_body, "more_body": False}
        except OSError:  # ASGI 2.4: the client has gone
            pass
        return None
    try:
        start = {"type": "http.response.start", "status": status, "headers": headers}
        if not await bounded(start):
            return None
        while chunk is not None:
            if chunk:
                message = {"type": "http.response.body", "body": chunk, "more_body": True}
                if not await bounded(message):
                    return None
            try:
                chunk = await _next_chunk(iterator)
            except ClientGone:
                return None
            except Exception as error:
                # The response has started: ending without the final message aborts it, so the
                # client sees a truncated response rather than a complete-looking one.
                log_stream_failed(scope, handler, "mid-response", error)
                return None
        return {"type": "http.response.body", "body": b"", "more_body": False}
    except OSError:  # ASGI 2.4: send() may raise once the client has gone
        logger.debug("client went away while handler %s streamed", handler_name(handler))
        return None


async def _next_chunk(iterator: AsyncIterator[Any]) -> bytes | None:
    try:
        chunk = await iterator.__anext__()
    except StopAsyncIteration:
        return None
    data = as_bytes(chunk)
    if data is None:
        raise InvalidResponse(f"stream yielded a {type(chunk).__name__}; it must yield bytes")
    return data


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()
