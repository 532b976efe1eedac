"""The websocket connection runner: the one task group of shallot, one per connection.

The design's shape (STYLE.md, docs/design.md)::

    async with anyio.create_task_group() as tg:      # one per connection
        [receive task]  ASGI receive -> queue -> Receiver -> handler
        handler (host task): what it yields -> ASGI send
        [send task]     the close, once the end is decided; then it cancels tg
        [cut task]      a send stalled send_timeout: cancels tg, or ends the handler itself
                        while a server that shields its send keeps the host task in it

The rules live in ``WSState`` (``_ws_state``, pure); ``Connection`` is that state plus the I/O,
and only carries out what the state decides. **The hot path** is the shortcut the state allows:
while the handler is the only reader (``may_read_directly``) it calls ASGI ``receive`` itself
(``_receiver``), and it sends what it yields itself, so a message costs no task switch and no
stream (measured in benchmarks/: the literal shape costs about 2x the CPU per message on
asyncio). The receive task runs only once the watch (``_watch``) saw the handler away from its
receiver a whole interval, or while the client's side of the close is awaited; it fills the
bounded queue, so a disconnect is seen however busy the handler is. The send task is the one
place that ends the connection: it sends the close the state chose, waits briefly for the
client's, gives the handler a bounded grace period, then cancels the group. Hooks run after the
group, shielded and bounded, so they also run when the server cancels the connection; or, when a
stalled send will not give way (hypercorn's trio worker), in the cut task beside it
(``_cut_send``, docs/design.md).
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, Protocol

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup

from ._errors import WSDisconnect, single_exception
from ._types import Message, Receive, Request, Send
from ._watch import Spawn, Watch
from ._ws_limits import Limits
from ._ws_messages import GOING_AWAY
from ._ws_state import (
    _SHUTTING_DOWN,
    CLOSE,
    LEAVE,
    PEER_LEFT,
    READ_FOR_HANDLER,
    STOP_SEND,
    WAIT,
    WSState,
)

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

logger = logging.getLogger("shallot")

Hook = Callable[[Request], Awaitable[Any]]

#: How long a stalled send may take to give way once cancelled, before ``_cut_send`` ends the
#: handler from its own task: a send that can be cancelled gives way at the next turn of the
#: event loop.
_CUT_GRACE = 0.25


class Endpoint(Protocol):
    """What ``@websocket`` fixed once (``websocket._Endpoint``): the handler, its name, hooks."""

    name: str
    on_disconnect: Hook | None
    on_close: Hook | None

    def start(
        self, scope: Request, receiver: Any, *route_args: Any
    ) -> AsyncGenerator[Any, None]: ...


def _set(event: anyio.Event | None) -> None:
    if event is not None:
        event.set()


def _at_yield(generator: Any) -> bool:  # a native async generator: ag_frame, ag_await
    """Whether the handler's generator is suspended at a yield (not finished, not in an await
    of its own): asked of the generator once it is to be ended, not tracked per message."""
    return (
        generator.ag_frame is not None and generator.ag_await is None and not generator.ag_running
    )


class Connection(WSState):
    """One accepted websocket connection: its state (``WSState``) and its I/O."""

    __slots__ = (
        "_arrived",
        "_ender",
        "_endpoint",
        "_handler",
        "_room",
        "group",
        "helpers",
        "receive",
        "scope",
        "send",
        "watch",
    )

    def __init__(
        self, scope: Request, receive: Receive, send: Send, limits: Limits, watch: Watch
    ) -> None:
        super().__init__(limits, anyio.current_time(), anyio.current_time)
        self.scope = scope
        self.receive = receive
        self.send = send
        self.watch = watch
        self.group: TaskGroup | None = None
        self.helpers: set[anyio.CancelScope] | None = None  # made by the first helper
        # Events exist only while someone waits on them: an idle connection holds none.
        self._arrived: anyio.Event | None = None  # the handler waits for the receive task
        self._room: anyio.Event | None = None  # the receive task waits for the handler
        self._ender: anyio.Event | None = None  # the send task waits for a change
        # The handler's generator while the host task drives it; taken by _cut_send when it
        # ends a handler whose send the server will not let go. Two slots, not a tuple: an
        # idle connection's bytes count (issue 18).
        self._handler: AsyncGenerator[Any, None] | None = None
        self._endpoint: Endpoint | None = None

    # -- carrying out decisions -----------------------------------------------------------

    def carry_out(self, decision: int) -> None:
        """Carries out what ``received`` decided (a payload aside)."""
        if decision == PEER_LEFT:
            if self.sending:
                self.stop()  # a send to nobody: the handler gets WSDisconnect at its yield
            _set(self._ender)
            _set(self._arrived)
            self.end()
        elif decision == CLOSE:
            self.end()

    def act(self, decision: int) -> None:
        """Carries out what a look of the watch decided."""
        if decision == READ_FOR_HANDLER:
            self.start_reading()
        elif decision == STOP_SEND:
            if self.group is not None:
                self.group.start_soon(self._cut_send)
        elif decision == LEAVE:
            self.left_watch()
        elif decision == CLOSE:  # an idle timeout (issue 14)
            self.end()

    def spawn(self) -> Spawn | None:
        """Returns how to start a task in this connection's group (a watch of its own)."""
        return None if self.group is None else self.group.start_soon

    def start_reading(self) -> None:
        """Starts the receive task: the handler is away, or the client's close is awaited and
        the handler is not in a read (which will get it: one reader at a time)."""
        if (
            not self.receive_task_runs
            and not self.direct_reading
            and self.client_code is None
            and self.group is not None
        ):
            self.receive_task_runs = True
            self.group.start_soon(self._receive_task)

    def end(self) -> None:
        """The end is decided: start the send task, which carries it out."""
        if self.group is not None and self.end_decided():
            self.group.start_soon(self._send_task)

    def close_with(self, code: int, reason: str) -> None:
        """Closes from the server's side with ``code`` unless a close is on its way."""
        if self.group is not None and self.request_close(code, reason):
            self.end()

    def going_away(self) -> None:
        """The server shuts down: close with 1001."""
        self.close_with(GOING_AWAY, _SHUTTING_DOWN)

    def stop(self) -> None:
        """Cancels the handler (and with it the group)."""
        if self.group is not None:
            self.group.cancel_scope.cancel()

    def disconnect(self) -> WSDisconnect:
        return WSDisconnect(*self.disconnect_cause())

    def start_helper(
        self, function: Callable[..., Awaitable[Any]], *args: Any
    ) -> anyio.CancelScope:
        """Runs ``function(*args)`` in the connection's group until the handler ends (an error
        is logged, not propagated); returns its cancel scope.

        Raises:
            RuntimeError: the handler is not running.
        """
        if self.group is None or not self.handler_running:
            raise RuntimeError("a helper task starts only while the websocket handler runs")
        if self.helpers is None:
            self.helpers = set()
        scope = anyio.CancelScope()
        self.helpers.add(scope)
        self.group.start_soon(self._helper, scope, function, args)
        return scope

    async def _helper(
        self, scope: anyio.CancelScope, function: Callable[..., Awaitable[Any]], args: Any
    ) -> None:
        try:
            with scope:
                await function(*args)
        except Exception:
            logger.exception("websocket helper task %r failed", function)
        finally:
            if self.helpers is not None:
                self.helpers.discard(scope)

    # -- receive task ----------------------------------------------------------------------

    async def _receive_task(self) -> None:
        """Reads on the handler's behalf into the bounded queue, until the handler reads again
        or the client has left."""
        try:
            while self.client_code is None:
                reads = self.reads
                # From receive() until the message is queued, the handler must not read
                # directly, or it would overtake the message in hand.
                self.task_reads(True)
                try:
                    data = self.received(await self.receive())
                    if isinstance(data, int):
                        self.carry_out(data)
                    else:
                        while self.offer(data, anyio.current_time()) == WAIT:
                            await self._wait_for_room()
                finally:
                    self.task_reads(False)
                    _set(self._arrived)
                if self.handler_running and (self.handler_waiting or self.reads != reads):
                    return  # the handler reads again: let it read directly
        finally:
            self.receive_task_runs = False
            _set(self._arrived)
            if self.parked < 0 and self.handler_running and self.client_code is None:
                self.watch.join(self)  # it left the watch while this task read

    async def _wait_for_room(self) -> None:
        self._room = anyio.Event()
        # A handler that reads makes room; one that has not read yet may be pure push.
        with anyio.move_on_at(math.inf if self.handler_reads() else self.room_deadline()):
            await self._room.wait()

    # -- send task ---------------------------------------------------------------------------

    async def _send_task(self) -> None:
        if self.handler_running and self.client_code is None and self.close_request is None:
            await self._until(lambda: not self.handler_running)  # started by the handler's end
        final = self.final_close()
        if final is not None:
            await self._until(lambda: not self.sending)  # the handler's send in progress
            if self.client_code is None:
                with anyio.move_on_after(self.limits.send_timeout):
                    try:
                        await self.send(final)
                        self.close_sent = True
                    except OSError:  # ASGI 2.4: the client has gone
                        self.send_failed()
                if self.client_code is None:  # the client's side of the close handshake
                    self.start_reading()
                    with anyio.move_on_after(self.limits.close_timeout):
                        await self._until(lambda: self.client_code is not None)
        if self.handler_running:
            with anyio.move_on_after(self.limits.disconnect_timeout):
                await self._until(lambda: not self.handler_running)
            self.grace_over = self.handler_running  # its cleanup may not wait any more
        self.stop()

    async def _until(self, done: Callable[[], bool]) -> None:
        while not done():
            ender = self._ender
            if ender is None or ender.is_set():  # else another task waits on it too: share it
                ender = self._ender = anyio.Event()
            await ender.wait()

    # -- a stalled send ------------------------------------------------------------------------

    async def _cut_send(self) -> None:
        """A send has stalled ``send_timeout``: the client counts as gone. Cancels the handler,
        and with it the send. A server may shield its send from cancellation (hypercorn's trio
        worker does): if the host task is still in it after ``_CUT_GRACE``, this task ends
        the handler (at its yield, as the host would) and runs the hooks, so that neither
        waits for a client that reads nothing. The connection itself ends once the send
        returns (the client reads, or the kernel's bound drops it), with the 1008 close."""
        with anyio.CancelScope(shield=True):  # the group is cancelled from here on
            logger.info(
                "websocket client read nothing for %ss; dropping it", self.limits.send_timeout
            )
            self.send_stalled()  # decided here, not guessed from how the handler ends
            self.stop()
            with anyio.move_on_after(_CUT_GRACE):
                await self._until(lambda: not self.sending)
            generator, endpoint = self._handler, self._endpoint
            if not self.sending or generator is None or endpoint is None:
                return  # the host task got the cancellation: it ends the handler itself
            self._handler = None  # the host task leaves it alone from now on
            await self._finish_handler(generator, endpoint.name, stop=True)
            on_disconnect_due, on_close_due = self.hooks_due()
            await self._hooks(endpoint, on_disconnect_due, on_close_due)

    # -- the handler (host task) ------------------------------------------------------------

    async def run(
        self,
        opening: Awaitable[bool],
        endpoint: Endpoint,
        receiver: Any,
        route_args: tuple[Any, ...],
        registry: set[Any] | None = None,
    ) -> None:
        """Runs the connection to its end: the handshake, the handler's generator (started
        with ``receiver``) in the host task of the group, then the hooks. One frame on purpose:
        an idle connection's memory is mostly the frames it is suspended in."""
        if not await opening:  # the handshake: refused, or the client left
            return
        del opening  # the finished coroutine would stay alive as long as the connection
        self.opened()
        generator: AsyncGenerator[Any, None] | None = None
        cancelled = False
        if registry is not None:
            registry.add(self)
        try:
            # The group's scope is the handler's: a client that leaves mid-send cancels it, so
            # does a stalled send and the end of the grace period. One scope per connection.
            async with anyio.create_task_group() as self.group:
                self.watch.join(self)
                if getattr(registry, "closing", False):  # shutdown began during the handshake
                    self.going_away()
                generator = self._start_handler(endpoint, receiver, route_args)
                del receiver  # the generator holds it
                if generator is not None:
                    self._handler, self._endpoint = generator, endpoint
                    await self._drive(generator, endpoint.name)
        except anyio.get_cancelled_exc_class():
            # The server cancels the connection (shutdown): the hooks say 1001. No send task:
            # its first send could slip a 1000 out before the cancellation hits it (issue 3).
            cancelled = True
            raise
        except BaseExceptionGroup as group:  # shallot's own tasks failed: the server broke ASGI
            raise single_exception(group) from None
        finally:
            self.group = None
            # Each step bounds itself: the grace period's scope, then a shielded scope per hook.
            await self._wrap_up(generator, endpoint, registry, cancelled)  # noqa: ASYNC102

    def _start_handler(
        self, endpoint: Endpoint, receiver: Any, route_args: tuple[Any, ...]
    ) -> AsyncGenerator[Any, None] | None:
        """Calls the handler; a failure to start (a wrong arity, say) is the handler's."""
        try:
            return endpoint.start(self.scope, receiver, *route_args)
        except Exception:
            self._log_failure(endpoint.name)
            self._handler_ended(failed=True)
            self.end()
            return None

    async def _wrap_up(
        self,
        generator: AsyncGenerator[Any, None] | None,
        endpoint: Endpoint,
        registry: set[Any] | None,
        cancelled: bool,
    ) -> None:
        """Once the group has ended: the handler's cleanup if it was cut short, then the
        hooks, whatever happened."""
        try:
            if self.handler_running and generator is not None:  # cut short: cancelled
                await self._finish_handler(generator, endpoint.name, stop=not cancelled)
        finally:
            self.watch.leave(self)
            if registry is not None:
                registry.discard(self)
            self.finished()
            # It shields and bounds each hook itself.
            await self._run_hooks(endpoint, cancelled)  # noqa: ASYNC102

    async def _drive(self, generator: AsyncGenerator[Any, None], name: str) -> None:
        """Sends what the handler yields until it ends or the end is decided."""
        reads_at_send = -1
        stop = True  # tell it why at its yield, if it is at one
        try:
            async for item in generator:
                if (  # WSState.handler_yielded's first case, read from calm (the hot path)
                    type(item) is dict
                    and len(item) == 2
                    and type(item.get("text")) is str
                    and item["type"] == "websocket.send"
                    and self.calm
                ):
                    self.sending = True
                    self.sends += 1
                    message: Message = item
                else:  # not calm: every rule applies
                    next_message = self.handler_yielded(item)  # the send counts as started
                    if next_message is None:
                        break  # it yielded a close (the send task sends it), or the end
                    message = next_message
                    if self.parked < 0:  # it left the watch while a helper read: rejoin
                        self.watch.join(self)
                try:
                    await self.send(message)
                except OSError:  # ASGI 2.4: the server says the client has gone
                    self.send_failed()
                    if self._handler is None:  # _cut_send has taken the handler over
                        return
                    break
                finally:
                    self.sending = False  # WSState.send_finished (the hot path)
                    if self._ender is not None:  # the send task waits for the send's end
                        self._ender.set()
                reads = self.reads
                if reads == reads_at_send or self._handler is None:
                    # Nothing read since the last send, so perhaps no checkpoint: a server's
                    # send to a client that left may return at once (issue 12, bug 1). Or
                    # _cut_send took the handler over: the group is cancelled, this raises.
                    await anyio.lowlevel.checkpoint()
                reads_at_send = reads
        except (WSDisconnect, StopAsyncIteration):
            pass  # the client left: an ordinary end
        except Exception:  # it raised, or yielded what cannot be sent
            self._log_failure(name)
            self.handler_failed = True
            stop = False  # it failed: closed, not told why
        await self._finish_handler(generator, name, stop=stop)
        self.end()

    async def _finish_handler(
        self, generator: AsyncGenerator[Any, None], name: str, stop: bool
    ) -> None:
        """Ends the handler's generator: at its yield it is told why (``WSDisconnect``, SPEC
        §4) when ``stop``; its cleanup runs bounded by the grace period."""
        try:
            if stop and _at_yield(generator) and self.handler_close is None:
                with self._grace_scope():
                    await generator.athrow(self.disconnect())
        except (WSDisconnect, StopAsyncIteration):
            pass
        except Exception:
            self._log_failure(name)
            self.handler_failed = True
        finally:
            try:
                with self._grace_scope():
                    await generator.aclose()  # its finally blocks run, bounded by the grace
            except (WSDisconnect, StopAsyncIteration):
                pass
            except Exception:
                self._log_failure(name)
            finally:
                self._handler_ended()

    def _handler_ended(self, failed: bool = False) -> None:
        self.watch.leave(self)
        if self.helpers:  # the handler's helpers end with it
            for helper in self.helpers:
                helper.cancel()
        self.handler_ended(failed)
        _set(self._room)
        _set(self._ender)

    def _log_failure(self, name: str) -> None:
        scope = self.scope
        logger.exception(
            "websocket handler %s failed (%s %s)",
            name,
            scope.get("method", "WS"),
            scope.get("path", "?"),
        )

    # -- after the group --------------------------------------------------------------------

    def _grace_scope(self) -> anyio.CancelScope:
        """Returns a scope for the handler's cleanup: bounded by the grace period, cancelled
        already once it is over."""
        # Made before it is entered: trio >= 0.27 counts the deadline from here, anyio's
        # asyncio backend from entry, a difference of one method call.
        scope = anyio.move_on_after(self.limits.disconnect_timeout)  # noqa: ASYNC122
        if self.grace_over:
            scope.cancel()
        return scope

    async def _run_hooks(self, endpoint: Endpoint, cancelled: bool) -> None:
        """Runs the hooks the state says are due, shielded and bounded; first tells the
        client why it ends where the state says so (1001 on a server cancellation, 1008 after
        a stalled send), bounded: the frame may be queued behind what the client never read."""
        with anyio.CancelScope(shield=True):
            parting = self.parting_close(cancelled)
            if parting is not None:
                with anyio.move_on_after(self.limits.close_timeout):
                    try:
                        await self.send(parting)
                    except OSError:
                        pass
            on_disconnect_due, on_close_due = self.hooks_due()
            await self._hooks(endpoint, on_disconnect_due, on_close_due)

    async def _hooks(self, endpoint: Endpoint, on_disconnect_due: bool, on_close_due: bool) -> None:
        if endpoint.on_disconnect is not None and on_disconnect_due:
            await self._hook("on_disconnect", endpoint.on_disconnect)
        if endpoint.on_close is not None and on_close_due:
            await self._hook("on_close", endpoint.on_close)

    async def _hook(self, name: str, hook: Hook) -> None:
        limits = self.limits
        with anyio.move_on_after(limits.close_timeout + limits.disconnect_timeout):
            try:
                await hook(self.scope)
            except Exception:
                logger.exception("websocket %s hook failed", name)
