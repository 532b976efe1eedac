"""One HTTP request end to end: read it (``_request``), call the handler, and send the response
dict (encoded by ``_prepare``) as ``http.response.*`` messages, a body at once or a stream
chunk by chunk (``_streaming``).

The hot path of a plain request (no body announced, a ``body`` response) opens no task group:
a request without ``content-length`` or ``transfer-encoding`` has no body (RFC 9112 §6.3), so
the server already holds its one ``http.request`` message. Every send of the response is
bounded by ``response_timeout`` (``_sending``), and the bound costs a timeout scope only when a
send waits. The disconnect watcher is paid only where it means something: a ``stream``.
"""

from __future__ import annotations

import logging
from typing import Any

from ._body import BodyStream
from ._failures import handler_name, log_raised, log_unusable, run_takeover
from ._lifespan import AppState
from ._prepare import InvalidResponse, no_content, prepare
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
    SCOPED,
    STEP,
    begin_pair,
    finish_within,
    plan,
)
from ._streaming import INTERNAL_ERROR, send_body, send_stream
from ._types import Handler, Message, Receive, Scope, Send

logger = logging.getLogger("shallot")

SERVICE_UNAVAILABLE = plain(503, "Service Unavailable")


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


def _after_stream(body: BodyStream, receive: Receive) -> Receive:
    """Returns ``receive`` for a response's disconnect watch once ``body`` has been read to
    its end: a response stream that reads the request's body (an echo, a proxy) must get every
    message of it, none taken by the watch (the body's reader sees a disconnect meanwhile)."""

    async def receive_after_stream() -> Message:
        await body.wait_ended()
        return await receive()

    return receive_after_stream


_name = handler_name


async def serve_http(
    scope: Scope,
    receive: Receive,
    send: Send,
    handler: Handler,
    app: AppState,
    limits: Limits,
) -> None:
    """Answers one HTTP request of ``app``: read it, call the handler, send what it returned.

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
    request = build_request(scope, headers, body, method, app.config)
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
    body_coming = streamed is not None and not streamed.ended  # the handler did not finish it
    if body_end is None and body_coming and status != 408:
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
                    suspended = begin_pair(send, start, end)
                    if suspended is not None:
                        await finish_within(suspended, limits.response_timeout)
                else:  # AS_IS
                    await send(start)
                    await send(end)
                return
            await send_body(send, status, raw, data or b"", method == "HEAD", limits, how)
        else:
            head = method == "HEAD" or no_content(status)  # headers only, the stream unsent
            if streamed is not None and body_coming:  # the response's stream may read it
                receive = _after_stream(streamed, receive)
            # an sse() stream ends as the app begins shutting down, as a websocket is closed
            open_ones = app.connections if hasattr(stream, "going_away") else None
            if open_ones is not None:
                if open_ones.closing:
                    stream.going_away()
                open_ones.add(stream)
            try:
                await send_stream(
                    send, receive, scope, status, raw, stream, head, limits, handler, how
                )
            finally:
                if open_ones is not None:
                    open_ones.discard(stream)
        if body_end is not None:
            await body_end.finish(limits, how)
    except OSError:  # ASGI 2.4: send() may raise once the client has gone
        logger.debug("client went away while handler %s answered", _name(handler))
