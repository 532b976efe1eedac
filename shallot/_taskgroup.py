"""The websocket connection runner: the one task group of shallot, one per connection.

Three tasks share one connection::

    ASGI receive --(handler reading: directly)------------------> Receiver -> handler (host)
                 \\-(handler away: [receive task] -> inbound)---/      |
    ASGI send    <--(data: directly from the handler task)-------------+
                 <--[send task] <- outbound (the close) -----------------'

The hot path costs no task switch: while the handler reads, it calls ASGI ``receive`` itself,
and it sends what it yields itself. The **receive task** watches: once the handler has been
away from its receiver for ``watch_interval``, it reads on its behalf into the bounded inbound
stream, so a client's disconnect is seen however the handler is busy. Exactly one of the two
reads at any time, and the inbound stream is drained before a direct read, so order holds.
The **send task** decides when the connection is over: it sends the close (the handler's, 1000
when the handler just ends, 1011 when it fails, 1009 for an oversized message), waits briefly
for the client's side of the close handshake, gives the handler a bounded grace period, then
cancels the group. Hooks run after the group, shielded and bounded, so they also run when the
server cancels the connection.
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
from ._types import Message, Receive, Request, Send
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

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

logger = logging.getLogger("shallot")

Hook = Callable[[Request], Awaitable[Any]]


class Options:
    """Per-decorator websocket settings, validated once by ``@websocket``."""

    __slots__ = ("close_timeout", "disconnect_timeout", "max_message_size", "max_queue",
                 "max_queue_bytes", "send_timeout", "watch_interval")

    def __init__(self, *, max_queue: int, max_queue_bytes: int, max_message_size: int,
                 disconnect_timeout: float, close_timeout: float, send_timeout: float,
                 watch_interval: float = 0.1) -> None:
        self.max_queue = max_queue
        self.max_queue_bytes = max_queue_bytes
        self.max_message_size = max_message_size
        self.disconnect_timeout = disconnect_timeout
        self.close_timeout = close_timeout
        self.send_timeout = send_timeout
        self.watch_interval = watch_interval


class Inbound:
    """The bounded inbound buffer the receive task fills while the handler is away: at most
    ``max_queue`` messages and ``max_queue_bytes`` bytes (a larger message is let in alone).

    Once the handler has read, a full buffer makes the receive task wait (backpressure: the
    server stops reading the socket, so the client slows down and nothing is lost). A handler
    that has never read is pure server push: a full buffer then drops what arrives, so memory
    stays bounded and the receive task keeps reading, which is how it sees the disconnect.
    """

    __slots__ = ("_space", "bytes", "count", "dropped", "max_bytes", "max_messages", "reading",
                 "rx", "taken_total", "tx")

    def __init__(self, options: Options) -> None:
        self.tx, self.rx = anyio.create_memory_object_stream[str | bytes](math.inf)
        self.max_messages = options.max_queue
        self.max_bytes = options.max_queue_bytes
        self.count = 0
        self.bytes = 0
        self.dropped = 0
        self.taken_total = 0
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
        self.taken_total += 1
        self._wake()

    def release(self) -> None:
        """The handler is gone: stop holding the receive task back."""
        self.reading = False
        self._wake()

    def _wake(self) -> None:
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
        self.client_initiated = False
        self.client_left = anyio.Event()
        self.handler_done = anyio.Event()
        self.handler_running = True
        self.handler_failed = False
        self.server_closed = False  # the close is decided: nothing more is sent
        self.close_request: Message | None = None
        # Who is inside ASGI receive(): never both.
        self.direct_reading = False
        self.direct_reads = 0
        self.task_reading = False
        self.handler_waiting = False
        self._read_done: anyio.Event | None = None
        # Direct sends by the handler task.
        self.sending = False
        self._send_idle: anyio.Event | None = None
        self.send_scope = anyio.CancelScope()
        self.pump_scope = anyio.CancelScope()
        self.handler_scope = anyio.CancelScope()

    # -- what arrives, whoever read it ---------------------------------------------------

    def arrived(self, message: Message) -> str | bytes | None:
        """Returns the payload of a message from the client, or None when it carried none
        for the handler (a disconnect, an oversized message, a message after the close)."""
        kind = message["type"]
        if kind == "websocket.receive":
            payload = incoming(message)
            if size_of(payload) > self.options.max_message_size:
                self._request_close(MESSAGE_TOO_BIG, "message too big")
                return None
            if self.server_closed or not self.handler_running:
                return None
            return payload
        if kind == "websocket.disconnect":
            self.client_code = int(message.get("code") or 1005)
            self.client_reason = str(message.get("reason") or "")
            if self.handler_running and not self.server_closed:
                self.client_initiated = True
            self.client_left.set()
            self.pump_scope.cancel()  # the send task: the connection is over
            if self.sending:
                self.send_scope.cancel()  # a send to nobody: stop it
            self._wake_watcher()
        return None

    def _request_close(self, code: int, reason: str) -> None:
        """Asks the send task, the one place that closes, to close with ``code``."""
        if self.close_request is None:
            self.close_request = {"type": "websocket.close", "code": code, "reason": reason}
            self.pump_scope.cancel()

    def _wake_watcher(self) -> None:
        if self._read_done is not None:
            self._read_done.set()
            self._read_done = None

    # -- receive task ------------------------------------------------------------------------

    async def receive_task(self, inbound_tx: MemoryObjectSendStream[str | bytes]) -> None:
        with inbound_tx:  # closing it is how a waiting Receiver learns the client left
            while self.client_code is None:
                await self._wait_handler_away()
                while self.client_code is None:
                    taken = self.inbound.taken_total
                    # From receive() until the message is queued, the handler must not read
                    # directly, or it would overtake the message in hand.
                    self.task_reading = True
                    try:
                        payload = self.arrived(await self.receive())
                        if payload is not None:
                            await self.inbound.put(payload)
                    finally:
                        self.task_reading = False
                    if self.handler_waiting or self.inbound.taken_total != taken:
                        break  # the handler reads again: let it read directly

    async def _wait_handler_away(self) -> None:
        """Returns once the handler has been away from its receiver a whole watch interval,
        or has ended (then the close handshake and disconnect are read here)."""
        while self.client_code is None and self.handler_running:
            if self.direct_reading:
                self._read_done = anyio.Event()
                await self._read_done.wait()
                continue
            reads = self.direct_reads + self.inbound.taken_total
            with anyio.move_on_after(self.options.watch_interval):
                await self.handler_done.wait()
            if not self.direct_reading and reads == self.direct_reads + self.inbound.taken_total:
                return

    async def read(self) -> str | bytes:
        """The Receiver's read: the buffer first, then ASGI receive directly unless the
        receive task holds it.

        Raises:
            WSDisconnect: the client left and everything it sent before was handed over.
        """
        inbound = self.inbound
        inbound.reading = True
        while True:
            try:
                payload = inbound.rx.receive_nowait()
            except anyio.WouldBlock:
                pass
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                raise WSDisconnect(self.client_code or ABNORMAL, self.client_reason) from None
            else:
                inbound.taken(payload)
                return payload
            if self.client_code is not None:
                raise WSDisconnect(self.client_code, self.client_reason)
            if self.task_reading:  # slow path: the receive task reads for us
                self.handler_waiting = True
                try:
                    payload = await inbound.rx.receive()
                except (anyio.EndOfStream, anyio.ClosedResourceError):
                    raise WSDisconnect(self.client_code or ABNORMAL,
                                       self.client_reason) from None
                finally:
                    self.handler_waiting = False
                inbound.taken(payload)
                return payload
            self.direct_reading = True
            try:
                message = await self.receive()
            finally:
                self.direct_reading = False
                self.direct_reads += 1
                self._wake_watcher()
            payload = self.arrived(message)
            if payload is not None:
                return payload

    # -- send task -------------------------------------------------------------------------

    async def send_task(self, outbound_rx: MemoryObjectReceiveStream[Message],
                        group: anyio.CancelScope) -> None:
        final: Message | None = None
        with outbound_rx:
            with self.pump_scope:  # cancelled when the client leaves or a close is requested
                async for message in outbound_rx:  # only the handler's close comes this way
                    final = message
                    break
                else:
                    code = INTERNAL_ERROR if self.handler_failed else NORMAL
                    final = {"type": "websocket.close", "code": code, "reason": ""}
        final = final or self.close_request
        if final is not None and self.client_code is None:
            self.server_closed = True
            await self._wait_send_idle()
            if self.client_code is None:
                with anyio.move_on_after(self.options.send_timeout):
                    try:
                        await self.send(final)
                    except OSError:  # ASGI 2.4: the client has gone
                        self.client_code = ABNORMAL
        if self.server_closed and self.client_code is None:
            with anyio.move_on_after(self.options.close_timeout):
                await self.client_left.wait()
        with anyio.move_on_after(self.options.disconnect_timeout):
            await self.handler_done.wait()
        self.handler_scope.cancel()
        await self.handler_done.wait()
        group.cancel()

    async def _wait_send_idle(self) -> None:
        if self.sending:
            self._send_idle = anyio.Event()
            await self._send_idle.wait()

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
        send, send_timeout, now = self.send, self.options.send_timeout, anyio.current_time
        at_yield = False
        async with aclosing(generator) as messages:
            # One scope for every send; each arms its deadline, which costs far less than a
            # scope per message. A client that leaves mid-send cancels it.
            with self.send_scope as scope:
                async for item in messages:
                    at_yield = True
                    message = outgoing(item)
                    if self.client_code is not None or self.server_closed:
                        break
                    if message["type"] == "websocket.close":
                        await outbound_tx.send(message)  # the send task closes
                        return  # closes now: nothing is sent after it
                    self.sending = True
                    scope.deadline = now() + send_timeout
                    try:
                        await send(message)
                    except OSError:  # ASGI 2.4: the server says the client has gone
                        self.client_code = self.client_code or ABNORMAL
                        break
                    finally:
                        self.sending = False
                        if self._send_idle is not None:
                            self._send_idle.set()
                    scope.deadline = math.inf
                    at_yield = False
                at_yield = False
            if scope.cancelled_caught and self.client_code is None:
                logger.info("websocket client read nothing for %ss; dropping it", send_timeout)
                self.client_code = ABNORMAL
                self.pump_scope.cancel()
            if at_yield and self.client_code is not None:
                # SPEC §4: a yielding handler learns of the disconnect at its yield.
                try:
                    await messages.athrow(WSDisconnect(self.client_code, self.client_reason))
                except StopAsyncIteration:
                    pass

    # -- after the group --------------------------------------------------------------------

    async def run_hooks(self, on_disconnect: Hook | None, on_close: Hook | None,
                        cancelled: bool) -> None:
        """Runs the hooks in order, shielded and bounded; on a server cancellation, first
        tells the client the server is going away (1001)."""
        with anyio.CancelScope(shield=True):
            if cancelled and not self.server_closed and self.client_code is None:
                self.server_closed = True
                with anyio.move_on_after(self.options.close_timeout):
                    try:
                        await self.send({"type": "websocket.close", "code": GOING_AWAY,
                                         "reason": "server shutting down"})
                    except OSError:
                        pass
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
