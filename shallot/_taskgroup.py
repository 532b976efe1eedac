"""The websocket connection runner: the one task group of shallot, one per connection.

The handler runs in the group's host task; two helper tasks join it when they have work::

    ASGI receive --(handler reading: directly)-----------------> Receiver -> handler (host)
                 \\-(handler away: [receive task] -> inbound)--/      |
    ASGI send    <--(data: directly from the handler task)------------+
                 <--[send task]: the close, once the end is decided

The hot path costs no task switch: while the handler reads, it calls ASGI ``receive`` itself,
and it sends what it yields itself. The endpoint's **watch** (``_watch``: one timer for all its
connections) looks at the connection once per ``watch_interval``: once the handler has been
away from its receiver a whole interval, it starts the **receive task**, which reads on its
behalf into the bounded inbound stream, so a client's disconnect is seen however the handler
is busy, and leaves as soon as the handler reads again. Exactly one of the two reads at any
time, and the inbound stream is drained before a direct read, so order holds. The **send
task** is started when the end is decided (the handler ended, the client left, a message was
too big) and is the one place that ends the connection: it sends the close (the handler's,
1000, 1011 or 1009), waits briefly for the client's side of the handshake, gives the handler
a bounded grace period, then cancels the group. Hooks run after the group, shielded and
bounded, so they also run when the server cancels the connection.
The receiving side (the inbound stream, the receive task, the Receiver) is in ``_inbound``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup

from ._errors import WSDisconnect
from ._inbound import Inbound, Receiver, _set, receive_task
from ._types import Message, Receive, Request, Send
from ._watch import Watch, watch_for
from ._ws_messages import (
    ABNORMAL,
    GOING_AWAY,
    INTERNAL_ERROR,
    NORMAL,
    outgoing,
)
from .response import ws_close

if TYPE_CHECKING:
    from .websocket import _Endpoint as Endpoint
    from .websocket import _Options as Options

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

logger = logging.getLogger("shallot")

Hook = Callable[[Request], Awaitable[Any]]

_SHUTTING_DOWN = "server shutting down"


def _close(code: int, reason: str = "") -> Message:
    """Returns ``ws_close(code, reason)`` as the plain ASGI message the server is sent."""
    return cast(Message, ws_close(code, reason))


async def _ended() -> AsyncGenerator[Any, None]:
    """A handler that could not start: it yields nothing."""
    return
    yield  # pragma: no cover


class _Flag:
    """A boolean attribute kept as one bit of ``flags``: rarely read, so one slot holds them all
    (an idle connection's memory is mostly its objects and frames)."""

    __slots__ = ("bit",)

    def __init__(self, bit: int) -> None:
        self.bit = bit

    def __get__(self, connection: Connection, owner: type | None = None) -> bool:
        return bool(connection.flags & self.bit)

    def __set__(self, connection: Connection, value: bool) -> None:
        connection.flags = connection.flags | self.bit if value else connection.flags & ~self.bit


class Connection:
    """One accepted websocket connection and the state its tasks share."""

    client_initiated = _Flag(1)  # the client left while the handler ran (on_disconnect runs)
    handler_failed = _Flag(2)  # the send task closes with 1011
    grace_over = _Flag(4)  # the handler's cleanup may not wait any more
    close_sent = _Flag(8)
    unfit_host = _Flag(16)  # its group no longer hosts the watch's task

    __slots__ = (
        "_client_left",
        "_handler_done",
        "_send_idle",
        "client_code",
        "client_reason",
        "close_request",
        "closing",
        "direct_reading",
        "flags",
        "group",
        "handler_close",
        "handler_running",
        "handler_waiting",
        "helpers",
        "inbound",
        "opened_at",
        "options",
        "parked",
        "reads",
        "receive",
        "receive_task_runs",
        "scope",
        "seen",
        "send",
        "sending",
        "sends",
        "server_closed",
        "task_reading",
        "watch",
    )

    def __init__(self, scope: Request, receive: Receive, send: Send, options: Options) -> None:
        self.scope = scope
        self.receive = receive
        self.send = send
        self.options = options
        self.inbound: Inbound | None = None  # made when the handler is first away
        self.opened_at = anyio.current_time()
        self.group: TaskGroup | None = None
        self.client_code: int | None = None  # set when the client's disconnect arrived
        self.client_reason = ""
        self.handler_running = True
        self.handler_close: Message | None = None  # the close the handler yielded
        self.close_request: Message | None = None  # a close decided on the receiving side
        self.server_closed = False  # the close is decided: nothing more is sent
        self.closing = False  # the send task runs
        self.receive_task_runs = False
        self.watch: Watch = watch_for(options)  # the endpoint's, in this event loop
        self.seen = -1  # reads the watch saw last time
        self.parked = -1  # looks the same direct read has lasted; -1: not in the watch
        self.flags = 0  # the _Flag attributes below, one bit each
        self.direct_reading = False  # the handler is inside ASGI receive()
        self.reads = 0  # messages the handler took, directly or from the inbound stream
        self.task_reading = False  # the receive task holds a message or is inside receive()
        self.handler_waiting = False
        self.sending = False  # the handler is inside ASGI send()
        self.sends = 0  # sends begun, for the watch's check of stuck sends
        self.helpers: set[anyio.CancelScope] | None = None  # made by the first helper
        # Events exist only while someone waits on them: an idle connection holds none.
        self._send_idle: anyio.Event | None = None
        self._client_left: anyio.Event | None = None
        self._handler_done: anyio.Event | None = None

    # -- starting the helper tasks ---------------------------------------------------------

    def start_reading(self) -> None:
        """Starts the receive task: the handler is away (the watch saw it), or the client's
        side of the close handshake is awaited."""
        if not self.receive_task_runs and self.client_code is None and self.group is not None:
            self.receive_task_runs = True
            self.group.start_soon(receive_task, self)

    def end(self) -> None:
        """The end is decided: start the send task, which carries it out."""
        if not self.closing and self.group is not None:
            self.closing = True
            self.group.start_soon(self._send_task)

    def _disconnect(self) -> WSDisconnect:
        return WSDisconnect(self.client_code or ABNORMAL, self.client_reason)

    # -- send task -------------------------------------------------------------------------

    async def _send_task(self) -> None:
        if self.handler_running and self.client_code is None and self.close_request is None:
            await self._wait_handler_done()  # started by the handler's own end
        final = self.handler_close or self.close_request
        if final is None and not self.handler_running:
            final = _close(INTERNAL_ERROR if self.handler_failed else NORMAL)
        if final is not None and self.client_code is None:
            self.server_closed = True
            if self.sending:  # let the handler's send in progress finish first
                self._send_idle = anyio.Event()
                await self._send_idle.wait()
            if self.client_code is None:
                with anyio.move_on_after(self.options.send_timeout):
                    try:
                        await self.send(final)
                        self.close_sent = True
                    except OSError:  # ASGI 2.4: the client has gone
                        self.client_code = ABNORMAL
                if self.client_code is None:  # the client's side of the close handshake
                    self.start_reading()
                    self._client_left = anyio.Event()
                    with anyio.move_on_after(self.options.close_timeout):
                        await self._client_left.wait()
        if self.handler_running:
            with anyio.move_on_after(self.options.disconnect_timeout):
                await self._wait_handler_done()
            self.grace_over = self.handler_running  # its cleanup may not wait any more
        self.stop()

    async def _wait_handler_done(self) -> None:
        if self.handler_running:
            if self._handler_done is None:
                self._handler_done = anyio.Event()
            await self._handler_done.wait()

    # -- handler (host task) ----------------------------------------------------------------

    def request_close(self, code: int, reason: str) -> None:
        """Closes the connection from the server's side with ``code`` (the send task does it,
        as any close), unless a close is already on its way."""
        if self.close_request is None and self.group is not None:
            self.close_request = _close(code, reason)
            self.end()

    def going_away(self) -> None:
        """The server shuts down: close with 1001."""
        self.request_close(GOING_AWAY, _SHUTTING_DOWN)

    async def run(
        self,
        opening: Awaitable[bool],
        endpoint: Endpoint,
        route_args: tuple[Any, ...],
        registry: set[Any] | None = None,
    ) -> None:
        """Runs the connection to its end: the handler's generator in the host task of the
        group, then the hooks. One frame on purpose: an idle connection's memory is mostly
        the frames it is suspended in."""
        if not await opening:  # the handshake: refused, or the client left
            return
        del opening  # the finished coroutine would stay alive as long as the connection
        at_yield = cancelled = False
        if registry is not None:
            registry.add(self)
        try:
            try:  # a failure to start (a wrong arity, say) is the handler's, as any other
                generator = endpoint.start(self.scope, Receiver(self), *route_args)
            except Exception:
                self._log_failure(endpoint)
                self.handler_failed = True
                generator = _ended()
            # The group's own scope is the handler's: a client that leaves mid-send cancels it,
            # so does a send stuck for send_timeout (the receive task's check_send) and the end
            # of the send task's grace period. The handler's cleanup then runs after the group
            # (below), bounded by what is left of the grace. One cancel scope per connection.
            async with anyio.create_task_group() as self.group:
                self.watch.join(self)
                if getattr(registry, "closing", False):  # shutdown began during the handshake
                    self.going_away()
                reads_at_send = -1
                try:
                    async for item in generator:
                        at_yield = True
                        if not (
                            type(item) is dict
                            and len(item) == 2
                            and type(item.get("text")) is str
                            and item["type"] == "websocket.send"
                        ):  # else the ws_send(str) shape: nothing to check
                            item = outgoing(item)
                            if item["type"] == "websocket.close":
                                if self.client_code is None and not self.server_closed:
                                    self.handler_close = item  # the send task sends it
                                break  # closes now: nothing is sent after it
                        if self.client_code is not None or self.server_closed:
                            break
                        self.sending = True
                        self.sends += 1  # the watch's check_send times sends
                        if self.parked < 0:  # left the watch while a helper read: rejoin
                            self.watch.join(self)
                        try:
                            await self.send(item)
                        except OSError:  # ASGI 2.4: the server says the client has gone
                            self.client_code = self.client_code or ABNORMAL
                            break
                        finally:
                            self.sending = False
                            if self._send_idle is not None:
                                self._send_idle.set()
                        if self.reads == reads_at_send:
                            # Nothing read since the last send, so maybe no checkpoint: a
                            # server's send to a client that left may return at once, and a
                            # pushing handler would spin (issue 12, bug 1).
                            await anyio.lowlevel.checkpoint()
                        reads_at_send = self.reads
                        at_yield = False
                    else:
                        at_yield = False
                    await self._stop_handler(generator, at_yield)
                    at_yield = False
                except (WSDisconnect, StopAsyncIteration):
                    pass  # the client left: an ordinary end
                except Exception:
                    self._log_failure(endpoint)
                    self.handler_failed = True  # the send task closes with 1011
                finally:
                    self.unfit_host = True  # once this body is left, the group closes
                if self.handler_running:
                    with self._phase_scope():
                        await generator.aclose()  # its finally blocks run, bounded by the grace
                    self._handler_ended()
                    self.end()
        except anyio.get_cancelled_exc_class():
            # The server cancels the connection (shutdown): the hooks say 1001. No send task:
            # its first send could slip a 1000 out before the cancellation hits it (hypercorn's
            # asyncio worker writes before it checkpoints), or on trio leave the server's
            # websocket closing with nothing written (issue 3).
            cancelled = True
            raise
        except BaseExceptionGroup as group:
            # A failure of shallot's own tasks (the server broke ASGI): unwrap a single one.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
        finally:
            self.group = None
            try:
                if self.handler_running:  # cut short by a cancellation: ours, or the server's
                    if not cancelled:
                        await self._stop_handler(generator, at_yield)
                    with self._phase_scope():
                        await generator.aclose()
                    self._handler_ended()
            except (WSDisconnect, StopAsyncIteration):
                pass
            except Exception:
                self._log_failure(endpoint)
            finally:
                self.watch.leave(self)
                if self.inbound is not None:
                    self.inbound.close()
                if registry is not None:
                    registry.discard(self)
                await self._run_hooks(endpoint.on_disconnect, endpoint.on_close, cancelled)

    def _log_failure(self, endpoint: Endpoint) -> None:
        scope = self.scope
        logger.exception(
            "websocket handler %s failed (%s %s)",
            endpoint.name,
            scope.get("method", "WS"),
            scope.get("path", "?"),
        )

    async def _stop_handler(self, generator: AsyncGenerator[Any, None], at_yield: bool) -> None:
        """Tells a handler stopped at its ``yield`` why: the client left (SPEC §4)."""
        if not at_yield or self.handler_close is not None:
            return
        if self.client_code is None:  # cut off mid-send, the client still there: it stalled
            logger.info(
                "websocket client read nothing for %ss; dropping it", self.options.send_timeout
            )
            self.client_code = ABNORMAL
        with self._phase_scope():
            await generator.athrow(self._disconnect())

    def _handler_ended(self) -> None:
        self.watch.leave(self)
        if self.helpers:  # the handler's helpers end with it
            for helper in self.helpers:
                helper.cancel()
        self.handler_running = False
        if self.inbound is not None:
            self.inbound.release()
        _set(self._handler_done)

    def stop(self) -> None:
        """Cancels the handler (and with it the group): the client left mid-send, a send
        stalled, or the grace period is over."""
        if self.group is not None:
            self.group.cancel_scope.cancel()

    # -- after the group --------------------------------------------------------------------

    def _phase_scope(self) -> anyio.CancelScope:
        """Returns a scope for the handler's cleanup (``athrow``, ``aclose``): bounded by the
        grace period, cancelled already once it is over."""
        scope = anyio.move_on_after(self.options.disconnect_timeout)
        if self.grace_over:
            scope.cancel()
        return scope

    async def _run_hooks(
        self, on_disconnect: Hook | None, on_close: Hook | None, cancelled: bool
    ) -> None:
        """Runs the hooks in order, shielded and bounded; on a server cancellation, first
        tells the client the server is going away (1001)."""
        with anyio.CancelScope(shield=True):
            if cancelled and not self.close_sent and self.client_code is None:
                self.server_closed = self.close_sent = True
                with anyio.move_on_after(self.options.close_timeout):
                    try:
                        await self.send(_close(GOING_AWAY, _SHUTTING_DOWN))
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
