"""The websocket connection runner: the one task group of shallot, one per connection.

Three parts, linked by memory object streams::

    ASGI receive -> [receive task] -> inbound  -> Receiver -> handler (host task)
    ASGI send    <- [send task]    <- outbound <----------------'

The **send task** decides when the connection is over: it sends what the handler yields in
order, sends the final close (1000 when the handler just ends, 1011 when it fails), waits
briefly for the client's side of the close handshake, gives the handler a bounded grace period
to finish, then cancels the group. The **receive task** turns a client disconnect into the end
of the inbound stream (the Receiver then raises ``WSDisconnect`` once drained) and stops the
send task's pumping, so a yielding handler gets ``WSDisconnect`` at its ``yield``. Hooks run
after the group, shielded and bounded, so they also run when the server cancels the connection.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._errors import WSDisconnect
from ._ws_messages import (
    ABNORMAL,
    GOING_AWAY,
    INTERNAL_ERROR,
    MESSAGE_TOO_BIG,
    NORMAL,
    incoming,
    outgoing,
    size_of,
)
from ._types import Message, Receive, Request, Send

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

logger = logging.getLogger("shallot")

Hook = Callable[[Request], Awaitable[Any]]


class Options:
    """Per-decorator websocket settings, validated once by ``@websocket``."""

    __slots__ = ("close_timeout", "disconnect_timeout", "max_message_size", "max_queue",
                 "max_queue_bytes", "send_timeout")

    def __init__(self, *, max_queue: int, max_queue_bytes: int, max_message_size: int,
                 disconnect_timeout: float, close_timeout: float, send_timeout: float) -> None:
        self.max_queue = max_queue
        self.max_queue_bytes = max_queue_bytes
        self.max_message_size = max_message_size
        self.disconnect_timeout = disconnect_timeout
        self.close_timeout = close_timeout
        self.send_timeout = send_timeout


class Inbound:
    """The bounded inbound buffer: at most ``max_queue`` messages and ``max_queue_bytes`` bytes
    (one larger message is always let in alone).

    Once the handler has read, a full buffer makes the receive task wait (backpressure: the
    server stops reading the socket, so the client slows down and nothing is lost). A handler
    that has never read is pure server push: a full buffer then drops what arrives, so memory
    stays bounded and the receive task keeps reading, which is how it sees the disconnect.
    """

    def __init__(self, options: Options) -> None:
        self.tx, self.rx = anyio.create_memory_object_stream[str | bytes](math.inf)
        self.max_messages = options.max_queue
        self.max_bytes = options.max_queue_bytes
        self.count = 0
        self.bytes = 0
        self.dropped = 0
        self.reading = False
        self._space: anyio.Event | None = None

    def _full(self, size: int) -> bool:
        return self.count >= self.max_messages or (
            self.count > 0 and self.bytes + size > self.max_bytes)

    async def put(self, payload: str | bytes) -> None:
        """Queues one message from the client, waiting for room if the handler reads."""
        size = size_of(payload)
        while self._full(size):
            if not self.reading:
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    logger.debug("websocket handler does not read; %d messages dropped",
                                 self.dropped)
                return
            self._space = anyio.Event()
            await self._space.wait()
        self.count += 1
        self.bytes += size
        try:
            self.tx.send_nowait(payload)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the handler is gone: nobody will read it

    def taken(self, payload: str | bytes) -> None:
        """Accounts for a message the handler took."""
        self.count -= 1
        self.bytes -= size_of(payload)
        if self._space is not None:
            self._space.set()
            self._space = None

    def release(self) -> None:
        """Wakes a waiting put for good: the handler is gone."""
        self.reading = False
        if self._space is not None:
            self._space.set()
            self._space = None


class Connection:
    """One accepted websocket connection and the state its three tasks share."""

    def __init__(self, scope: Request, receive: Receive, send: Send, options: Options) -> None:
        self.scope = scope
        self.receive = receive
        self.send = send
        self.options = options
        self.inbound = Inbound(options)
        self.client_code: int | None = None  # set when the client's disconnect arrived
        self.client_reason = ""
        self.client_left = anyio.Event()
        self.handler_done = anyio.Event()
        self.handler_running = True
        self.server_closed = False  # a close frame went out
        self.close_request: Message | None = None
        self.handler_failed = False
        self.client_initiated = False
        self.pump_scope = anyio.CancelScope()
        self.handler_scope = anyio.CancelScope()

    # -- receive task ------------------------------------------------------------------------

    async def receive_task(self, inbound_tx: MemoryObjectSendStream[str | bytes]) -> None:
        with inbound_tx:  # closing it is how the Receiver learns the client left
            while True:
                message = await self.receive()
                kind = message["type"]
                if kind == "websocket.receive":
                    payload = incoming(message)
                    if size_of(payload) > self.options.max_message_size:
                        self._request_close(MESSAGE_TOO_BIG, "message too big")
                    elif self.handler_running and not self.server_closed:
                        await self.inbound.put(payload)
                elif kind == "websocket.disconnect":
                    self.client_code = int(message.get("code") or 1005)
                    self.client_reason = str(message.get("reason") or "")
                    if self.handler_running and not self.server_closed:
                        self.client_initiated = True
                    self.client_left.set()
                    self.pump_scope.cancel()  # stop sending: nobody is listening
                    return

    def _request_close(self, code: int, reason: str) -> None:
        """Asks the send task, the one place that closes, to close with ``code``."""
        if self.close_request is None:
            self.close_request = {"type": "websocket.close", "code": code, "reason": reason}
            self.pump_scope.cancel()

    # -- send task -------------------------------------------------------------------------

    async def send_task(self, outbound_rx: MemoryObjectReceiveStream[Message],
                        group: anyio.CancelScope) -> None:
        final: Message | None = None
        with outbound_rx:
            with self.pump_scope:
                async for message in outbound_rx:
                    if message["type"] == "websocket.close":
                        final = message
                        break
                    with anyio.move_on_after(self.options.send_timeout) as timeout:
                        try:
                            await self.send(message)
                        except OSError:  # ASGI 2.4: the server says the client has gone
                            timeout.cancel()
                    if timeout.cancel_called:  # the client stopped reading or left
                        logger.info("websocket client stopped reading (send timeout %ss) or left",
                                    self.options.send_timeout)
                        self.client_code = ABNORMAL
                        break
                else:  # the handler ended without closing
                    code = INTERNAL_ERROR if self.handler_failed else NORMAL
                    final = {"type": "websocket.close", "code": code, "reason": ""}
            final = final or self.close_request
            if final is not None and self.client_code is None:
                self.server_closed = True
                with anyio.move_on_after(self.options.send_timeout):
                    try:
                        await self.send(final)
                    except OSError:
                        self.client_code = ABNORMAL
        if self.server_closed and self.client_code is None:
            with anyio.move_on_after(self.options.close_timeout):
                await self.client_left.wait()
        with anyio.move_on_after(self.options.disconnect_timeout):
            await self.handler_done.wait()
        self.handler_scope.cancel()
        await self.handler_done.wait()
        group.cancel()

    # -- handler (host task) ----------------------------------------------------------------

    async def drive(self, generator: AsyncGenerator[Any, None],
                    outbound_tx: MemoryObjectSendStream[Message], name: str) -> None:
        try:
            with outbound_tx, self.handler_scope:
                try:
                    await self._pump_handler(generator, outbound_tx)
                except WSDisconnect:
                    pass  # the client left: an ordinary end
                except Exception:
                    logger.exception("websocket handler %s failed", name)
                    self.handler_failed = True  # the send task closes with 1011
        finally:
            self.handler_running = False
            self.inbound.rx.close()
            self.inbound.release()
            self.handler_done.set()

    async def _pump_handler(self, generator: AsyncGenerator[Any, None],
                            outbound_tx: MemoryObjectSendStream[Message]) -> None:
        async with aclosing(generator) as messages:
            async for item in messages:
                message = outgoing(item)
                try:
                    await outbound_tx.send(message)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    # The send task stopped: the client left (SPEC §4: raise at the yield).
                    if self.client_code is None:
                        return
                    error = WSDisconnect(self.client_code, self.client_reason)
                    try:
                        await messages.athrow(error)
                    except StopAsyncIteration:
                        pass
                    return
                if message["type"] == "websocket.close":
                    return  # closes now: nothing is sent after it

    # -- after the group --------------------------------------------------------------------

    async def run_hooks(self, on_disconnect: Hook | None, on_close: Hook | None,
                        cancelled: bool) -> None:
        """Runs the hooks in order, shielded and bounded; on a server cancellation, first
        tells the client the server is going away (1001)."""
        with anyio.CancelScope(shield=True):
            if cancelled and not self.server_closed and self.client_code is None:
                self.server_closed = True
                with anyio.move_on_after(self.options.close_timeout):
                    await self.send({"type": "websocket.close", "code": GOING_AWAY,
                                     "reason": "server shutting down"})
            if on_disconnect is not None and self.client_initiated:
                await self._hook("on_disconnect", on_disconnect)
            if on_close is not None:
                await self._hook("on_close", on_close)

    async def _hook(self, name: str, hook: Hook) -> None:
        with anyio.move_on_after(self.options.close_timeout + self.options.disconnect_timeout):
            try:
                await hook(self.scope)
            except Exception:
                logger.exception("websocket %s hook failed", name)


async def run_connection(connection: Connection, generator: AsyncGenerator[Any, None],
                         name: str, on_disconnect: Hook | None, on_close: Hook | None) -> None:
    """Runs an accepted connection to its end, then its hooks."""
    outbound_tx, outbound_rx = anyio.create_memory_object_stream[Message](0)
    cancelled = False
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(connection.receive_task, connection.inbound.tx)
            tg.start_soon(connection.send_task, outbound_rx, tg.cancel_scope)
            await connection.drive(generator, outbound_tx, name)
    except anyio.get_cancelled_exc_class():
        cancelled = True
        raise
    except BaseExceptionGroup as group:
        # A failure of shallot's own tasks (the server broke ASGI, say): unwrap a single one.
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
    finally:
        await connection.run_hooks(on_disconnect, on_close, cancelled)
