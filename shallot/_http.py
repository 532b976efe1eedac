"""One HTTP request end to end: read it (``_request``), call the handler, and send the response
dict (encoded by ``_prepare``) as ``http.response.*`` messages, a body at once or a stream
chunk by chunk.

The hot path of a plain request (no body announced, a ``body`` response) opens no task group:
a request without ``content-length`` or ``transfer-encoding`` has no body (RFC 9112 §6.3), so
the server already holds its one ``http.request`` message. Every send of the response is
bounded by ``response_timeout`` (``_sending``), and the bound costs a timeout scope only when a
send waits. The disconnect watcher is paid only where it means something: a ``stream``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

import anyio

from ._body import BodyStream
from ._failures import handler_name, log_raised, log_stream_failed, log_unusable, run_takeover
from ._prepare import InvalidResponse, prepare
from ._request import (
    BodyEnd,
    ClientGone,
    Limits,
    Refused,
    bodiless,
    build_request,
    ends_one_stream,
    plain,
    read_body,
)
from ._sending import (
    AS_IS,
    SCOPED,
    STEP,
    StallWatch,
    begin,
    finish_within,
    in_turn,
    plan,
    send_all_within,
    send_within,
)
from ._streams import as_bytes, close_stream
from ._types import Handler, Message, Receive, Scope, Send

logger = logging.getLogger("shallot")

#: One send of a response, bounded by the response timeout: False once it was abandoned.
Bounded = Callable[[Message], Awaitable[bool]]

INTERNAL_ERROR = plain(500, "Internal Server Error")
SERVICE_UNAVAILABLE = plain(503, "Service Unavailable")


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
        logger.debug("client went away while handler %s streamed", _name(handler))
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


def _after_stream(body: BodyStream, receive: Receive) -> Receive:
    """Returns ``receive`` for a response's disconnect watch once ``body`` has been read to
    its end: a response stream that reads the request's body (an echo, a proxy) must get every
    message of it, none taken by the watch (the body's reader sees a disconnect meanwhile)."""

    async def receive_after_stream() -> Message:
        await body.wait_ended()
        return await receive()

    return receive_after_stream


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


_name = handler_name


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
    streamed = None
    body_end = None
    try:
        if bodiless(scope, headers):
            # Nothing to receive, not even the one empty http.request message: fetching it
            # costs a trip through the server's queue (on trio, a scheduler round) for nothing;
            # a stream's disconnect watch skips it later.
            body = b""
            unread = True
        else:
            unread = False
            if ends_one_stream(scope):  # HTTP/2: the body is read to its end before answering
                receive = body_end = BodyEnd(receive, send)
            if limits.streams_body is not None and limits.streams_body(scope, headers):
                body = b""  # the handler reads it from request["body_stream"] (issue 15)
                streamed = BodyStream(receive, headers, limits.max_body_size, limits.body_timeout)
            else:
                body = await read_body(scope, headers, receive, limits)
    except Refused as refused:
        status, raw, data, _ = prepare(refused.response)
        how = plan(send, scope)
        if body_end is None and status == 413:  # HTTP/1: for a client still writing its body
            body_end = BodyEnd(receive, send, lingers=True)
        if body_end is not None:  # the answer now, its end once the body has ended
            send = body_end.holding()
        try:
            await send_body(send, status, raw, data or b"", False, limits, how)
            if body_end is not None:
                await body_end.finish(limits, how)
        except Exception:
            # The client left while refused: on trio the server's send can then fail with
            # BusyResourceError rather than OSError (its reader is closing the socket). The
            # refusal is ours, well-formed, so a failure here is the transport's (issue 13).
            logger.debug("client went away before the %s refusal was sent", status)
        return
    except ClientGone:
        return
    method = scope["method"]
    request = build_request(scope, headers, body, method, config)
    if streamed is not None:
        request["body_stream"] = streamed
    try:
        result = await handler(request)
    except Refused as refused:  # a streamed body broke a limit while the handler read it
        result = refused.response
    except ClientGone:  # the client left while the handler read its streamed body
        return
    except Exception as error:
        log_raised(scope, handler, error)
        result = INTERNAL_ERROR
    if type(result) is not dict and callable(result):
        # raw takeover (SPEC §1): the body is always read by then, left unread or not
        rest = _after_body(receive) if unread else receive
        status, raw, data, _ = prepare(INTERNAL_ERROR)

        def refuse(send: Send) -> Any:
            return send_body(send, status, raw, data or b"", False, limits, plan(send, scope))

        await run_takeover(result, rest, send, scope, handler, refuse)
        return
    try:
        status, raw, data, stream = prepare(result)
    except InvalidResponse as error:
        log_unusable(scope, handler, str(error))
        status, raw, data, stream = prepare(INTERNAL_ERROR)
    how = plan(send, scope)
    if body_end is None and streamed is not None and not streamed.ended and status != 408:
        # HTTP/1: a streamed body left unread, or read by the response's stream
        body_end = BodyEnd(receive, send, lingers=True, stream=streamed)
    if body_end is not None:  # a streamed body, refused or unread, may still come
        send = body_end.holding()
    try:
        if stream is None:
            if data is not None and method != "HEAD" and how != SCOPED and body_end is None:
                # send_body, inlined: every plain request takes this path
                start = {"type": "http.response.start", "status": status, "headers": raw}
                end = {"type": "http.response.body", "body": data, "more_body": False}
                if how == STEP:
                    suspended = begin(in_turn(send, (start, end)))
                    if suspended is not None:
                        await finish_within(suspended, limits.response_timeout)
                else:  # AS_IS
                    await send(start)
                    await send(end)
                return
            await send_body(send, status, raw, data or b"", method == "HEAD", limits, how)
        else:
            head = method == "HEAD" or status == 204 or status == 304 or status < 200  # no content
            if streamed is not None and not streamed.ended:  # the stream may read the body
                receive = _after_stream(streamed, receive)
            await send_stream(send, receive, scope, status, raw, stream, head, limits, handler, how)
        if body_end is not None:
            await body_end.finish(limits, how)
    except OSError:  # ASGI 2.4: send() may raise once the client has gone
        logger.debug("client went away while handler %s answered", _name(handler))
