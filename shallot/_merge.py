"""``receiver.merge(*sources)``: what the client sends and other async iterables, as one iteration.

A websocket handler that must wait on two things at once (its client, and a hub subscription)
would need a task group of its own, and it must never ``yield`` inside one (STYLE.md). So the
merge runs one **pump** per source as a helper task of the connection's own group
(``Connection.start_helper``): each pump iterates its source and sends ``(source, item)`` into
an unbuffered memory stream that the handler's generator reads in the host task. An error of
a source (``WSDisconnect`` from the receiver, ``SlowSubscriber`` from a subscription) travels
the same stream and is raised in the generator, after the items that came before it. A pump
holds at most the one item it is handing over, so a handler that does not keep up holds its
sources back: the receiver's pump stops reading (the client is slowed down, as when the
handler reads directly) and a subscription's buffer applies its overflow policy. The pumps
are cancelled when the merge is closed, and in any case when the handler ends. Handlers that
do not merge pay nothing: no task, no stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable
from contextlib import suppress
from types import TracebackType
from typing import Any, Protocol, TypeAlias

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

_Item: TypeAlias = "tuple[object, Any, Exception | None]"


class Merged:
    """The merged iteration ``receiver.merge(...)`` returns: ``async for source, item in ...``
    gives each item with the source it came from (the receiver for what the client sent).

    Iteration raises what a source raised (``WSDisconnect`` when the client left, once what it
    sent before was handed over) and ends when every source has ended. Use it as ``async
    with`` (or call ``aclose()``) to stop the pumps before the handler ends, for example to
    read the receiver directly again; an item a pump was holding is then dropped.
    """

    __slots__ = ("_pumps", "_rx", "_scopes", "_sources", "_start_helper")

    def __init__(
        self,
        start_helper: Callable[..., anyio.CancelScope],
        sources: tuple[AsyncIterable[Any], ...],
    ) -> None:
        self._start_helper = start_helper
        self._sources = sources
        self._rx: MemoryObjectReceiveStream[_Item] | None = None
        self._scopes: list[anyio.CancelScope] = []
        self._pumps = 0  # running

    def __aiter__(self) -> Merged:
        return self

    async def __anext__(self) -> tuple[Any, Any]:
        """Returns the next ``(source, item)``, waiting for one (the pumps start on the first
        call).

        Raises:
            StopAsyncIteration: every source has ended, or the merge was closed.
            Exception: whatever a source raised, ``WSDisconnect`` from the receiver included.
        """
        rx = self._rx if self._rx is not None else self._start()
        try:
            source, item, error = await rx.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None
        if error is not None:
            raise error
        return source, item

    def _start(self) -> MemoryObjectReceiveStream[_Item]:
        tx, rx = anyio.create_memory_object_stream[_Item](0)
        self._rx = rx
        with tx:  # each pump owns a clone: the stream ends when the last pump has
            for source in self._sources:
                clone = tx.clone()
                try:
                    self._scopes.append(self._start_helper(self._pump, source, clone))
                    self._pumps += 1
                except BaseException:
                    clone.close()
                    rx.close()
                    raise
        return rx

    async def _pump(self, source: AsyncIterable[Any], tx: MemoryObjectSendStream[_Item]) -> None:
        """Hands each item of ``source`` to the merge, then its error if it raised one."""
        try:
            with tx:
                try:
                    async for item in source:
                        await tx.send((source, item, None))
                except Exception as error:  # the generator raises it: not this task's to handle
                    with suppress(anyio.BrokenResourceError):
                        await tx.send((source, None, error))
        finally:
            self._pumps -= 1
            if self._pumps == 0 and self._rx is not None:
                # Nothing can come any more, and the stream holds nothing (no buffer): close
                # the generator's end too, which then ends the iteration as EndOfStream would.
                self._rx.close()

    async def aclose(self) -> None:
        """Stops the pumps; iteration ends."""
        self._close()

    def _close(self) -> None:
        for scope in self._scopes:
            scope.cancel()
        if self._rx is not None:
            self._rx.close()
        else:  # never started: nothing will start now
            self._rx = _closed_stream()

    async def __aenter__(self) -> Merged:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._close()


def _closed_stream() -> MemoryObjectReceiveStream[_Item]:
    tx, rx = anyio.create_memory_object_stream[_Item](0)
    tx.close()
    rx.close()
    return rx


class HelperHost(Protocol):
    """What runs a merge's pumps: the connection (``_taskgroup.Connection``)."""

    def start_helper(
        self, function: Callable[..., Awaitable[Any]], *args: Any
    ) -> anyio.CancelScope: ...


def start_helper(
    host: HelperHost, function: Callable[..., Awaitable[Any]], *args: Any
) -> anyio.CancelScope:
    """Runs ``function(*args)`` as a helper task of the connection ``host`` until its handler
    ends (see ``Connection.start_helper``); returns the helper's cancel scope.

    Raises:
        RuntimeError: the handler is not running.
    """
    return host.start_helper(function, *args)
