"""The sends of a response, bounded by the response timeout (issue 13), at no cost while they
do not wait.

A client that stops reading fills the socket buffers, and then the server's ``send`` waits for
it. Every send of a response goes through ``send_all_within``, so such a client holds the
handler at most ``response_timeout`` seconds.

A timeout scope costs more than a whole plain request (about 5 µs on asyncio, 6.5 µs on trio),
and most sends never wait: on hypercorn's asyncio worker, as on uvicorn, a send writes to the
transport and returns without suspending unless the buffers are full. So a server's own send is
first stepped by hand, up to its first suspension (``begin``). One that finishes in that step
needed no bound. One that suspends is resumed under a scope entered right there, before the
event loop sees that it suspended: the same task, the same awaitable handed to the loop, only
the scope around it is new. The deadline counts from that first suspension, a step after the
send began.

A scope entered there is correct only if the send has no cancel scope of its own open at that
suspension (it would be exited inside ours). So ``plan`` tells, once per response, what is
known of ``send``:

- ``STEP``: a server's own send, known to open no scope before it first suspends (hypercorn's
  asyncio worker, uvicorn; hypercorn's trio worker over HTTP/2): stepped by hand as above. On
  trio every send suspends at least at a checkpoint, so there the scope is always paid;
- ``AS_IS``: hypercorn's trio worker over HTTP/1, whose only wait is a socket write it shields
  from cancellation: no scope could cut it, so none is paid (the kernel's bound, set by
  ``serve``, ends such a send);
- ``SCOPED``: any other ``send`` (an ASGI middleware's wrapper around shallot's app, a test's
  fake): the scope is entered before it starts, as it may open scopes of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any

import anyio

from ._streams import close_stream
from ._types import Message, Scope, Send

logger = logging.getLogger("shallot")


class _Suspended:
    """A coroutine stepped by hand up to its first suspension: awaiting it hands what it yielded
    to the event loop and runs the coroutine on to its end, as ``await`` would have."""

    __slots__ = ("_coroutine", "_yielded")

    def __init__(self, coroutine: Any, yielded: Any) -> None:
        self._coroutine = coroutine
        self._yielded = yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        coroutine = self._coroutine
        yielded = self._yielded
        self._yielded = None
        while True:  # what ``yield from`` does, from the second step on
            try:
                sent = yield yielded
            except GeneratorExit:
                coroutine.close()
                raise
            # A cancellation thrown in by the loop goes on into the coroutine, which raises it
            # (or, like any awaited coroutine, handles it): passed on, not swallowed.
            except BaseException as error:  # noqa: ASYNC103
                try:
                    yielded = coroutine.throw(error)
                except StopIteration as stop:
                    return stop.value  # noqa: ASYNC104
            else:
                try:
                    yielded = coroutine.send(sent)
                except StopIteration as stop:
                    return stop.value


def begin(coroutine: Coroutine[Any, Any, Any]) -> _Suspended | None:
    """Runs ``coroutine`` up to its first suspension; returns None when it finished without
    one, else what to await to finish it.

    Raises:
        Exception: whatever it raised in that first step.
    """
    try:
        yielded = coroutine.send(None)
    except StopIteration:
        return None
    return _Suspended(coroutine, yielded)


def begin_pair(send: Send, first: Message, second: Message) -> Any:
    """Sends ``first`` then ``second`` with ``send``, each stepped by hand up to its first
    suspension (``begin``, without a coroutine around the two: this is every plain response's
    send). Returns None when both finished without one, else what to await to finish them.

    Raises:
        Exception: whatever a send raised in its first step.
    """
    coroutine: Any = send(first)  # a server's send is a coroutine function
    try:
        yielded = coroutine.send(None)
    except StopIteration:
        coroutine = send(second)
        try:
            yielded = coroutine.send(None)
        except StopIteration:
            return None
        return _Suspended(coroutine, yielded)
    return _then(_Suspended(coroutine, yielded), send, second)


async def _then(suspended: _Suspended, send: Send, message: Message) -> None:
    await suspended
    await send(message)


#: How to bound a send (``plan``): step it by hand and enter the scope once it waits; send it
#: as it is (no scope could cut its wait); or enter the scope before it starts.
STEP, AS_IS, SCOPED = 1, 2, 3

#: Classes whose ``send`` (their method, or they themselves called) opens no cancel scope before
#: it first suspends: uvicorn's, and hypercorn's stream on both workers (its trio worker shields
#: the socket write, entered after the connection's send lock, so after that first suspension),
#: which ``_worker_plan`` looks at further.
PLAIN_SENDERS = {
    "uvicorn.protocols.http.h11_impl.RequestResponseCycle",
    "uvicorn.protocols.http.httptools_impl.RequestResponseCycle",
}
#: hypercorn's trio worker, whose HTTP/1 sends wait only in its shielded socket write (and for
#: its connection's send lock, which one request at a time never finds taken): a scope could cut
#: nothing there, and would cost more than the request. The kernel's bound applies instead.
_UNCUTTABLE = "hypercorn.trio.worker_context.WorkerContext"
_HYPERCORN_STREAM = "hypercorn.protocol.http_stream.HTTPStream"
_plans: dict[type, int] = {}  # each sender's class (and hypercorn's contexts), looked up once


def plan(send: Send, scope: Scope) -> int:
    """Returns how to bound the sends of the response to ``scope``'s request, made with
    ``send`` (``STEP``, ``AS_IS`` or ``SCOPED``)."""
    owner: Any = getattr(send, "__self__", send)
    kind = _plans.get(type(owner))
    if kind is None:
        kind = _plans[type(owner)] = _plan_of(type(owner))
    if kind == _BY_WORKER:
        kind = _worker_plan(type(owner.context), scope)
    return kind


#: What ``_plan_of`` says of hypercorn's stream: its worker decides (``_worker_plan``).
_BY_WORKER = 0


def _plan_of(owner: type) -> int:
    name = _name(owner)
    if name == _HYPERCORN_STREAM:
        return _BY_WORKER
    return STEP if name in PLAIN_SENDERS else SCOPED


def _worker_plan(context: type, scope: Scope) -> int:
    kind = _plans.get(context)
    if kind is None:
        kind = _plans[context] = AS_IS if _name(context) == _UNCUTTABLE else STEP
    if kind == AS_IS and scope.get("http_version") == "2":
        return STEP  # HTTP/2's flow control waits outside the shield: a scope cuts it
    return kind


def _name(owner: type) -> str:
    return f"{owner.__module__}.{owner.__qualname__}"


async def send_all_within(
    send: Send, messages: tuple[Message, ...], seconds: float, how: int
) -> bool:
    """Sends ``messages`` in order, giving up once they have waited ``seconds`` in all
    (``how``: what ``plan`` said of ``send``).

    Returns:
        True once sent; False when the sends were abandoned (the client stopped reading).

    Raises:
        OSError: the server says the client has gone (ASGI 2.4).
    """
    if how == STEP:
        suspended = begin(in_turn(send, messages))
        return True if suspended is None else await finish_within(suspended, seconds)
    if how == AS_IS:
        await in_turn(send, messages)
        return True
    with anyio.move_on_after(seconds) as scope:
        await in_turn(send, messages)
    return _sent(scope, seconds)


async def in_turn(send: Send, messages: tuple[Message, ...]) -> None:
    """Sends ``messages`` in order: one coroutine to step by hand for them all."""
    for message in messages:
        await send(message)


async def finish_within(suspended: Awaitable[Any], seconds: float) -> bool:
    """Finishes what ``begin`` or ``begin_pair`` left suspended within ``seconds`` (see
    ``send_all_within``)."""
    with anyio.move_on_after(seconds) as scope:
        await suspended
    return _sent(scope, seconds)


def _sent(scope: anyio.CancelScope, seconds: float) -> bool:
    if scope.cancelled_caught:
        logger.info("client stopped reading; response abandoned after %ss", seconds)
        return False
    return True


async def send_within(send: Send, message: Message, seconds: float, how: int) -> bool:
    """Sends ``message``, giving up after ``seconds`` (see ``send_all_within``)."""
    return await send_all_within(send, (message,), seconds, how)


class StallWatch:
    """The bound of a stream's sends where no scope can cut them (``AS_IS``: hypercorn's trio
    worker over HTTP/1). Once one send has waited ``seconds``, the stream is ended instead of
    the send: its iterator is closed (its ``finally`` runs, what it holds is let go) beside
    the send, which returns when the client reads again or the kernel's bound drops the
    socket; the response then ends unfinished. The watch looks four times per ``seconds``, so
    a stalled stream ends within 1.25 times the bound, at the price of a timer's wake-up per
    quarter of it while the stream lasts (no work per chunk but two clock reads)."""

    __slots__ = ("_iterator", "_seconds", "_send", "_since", "cut")

    def __init__(self, send: Send, iterator: Any, seconds: float) -> None:
        self._send = send
        self._iterator = iterator
        self._seconds = seconds
        self._since: float | None = None  # when the send in progress began
        self.cut = False

    async def send(self, message: Message) -> bool:
        """Sends ``message``; returns False once the stream has been ended (see the class)."""
        self._since = anyio.current_time()
        try:
            await self._send(message)
        finally:
            self._since = None
        return not self.cut

    async def watch(self, group: anyio.CancelScope) -> None:
        """Looks at the send in progress until the stream ends (``group`` is cancelled), and
        ends the stream, cancelling ``group``, once one has waited ``seconds``."""
        seconds = self._seconds
        while True:
            await anyio.sleep(seconds / 4)
            since = self._since
            if since is not None and anyio.current_time() - since >= seconds:
                break
        self.cut = True
        logger.info("client stopped reading; stream ended after a send waited %ss", seconds)
        group.cancel()
        await close_stream(self._iterator, "a response stream")  # it shields itself
