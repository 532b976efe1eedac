"""``receiver.merge(*sources)``: what the client sends and other async iterables, as one iteration.

A websocket handler that must wait on two things at once (its client, and a hub subscription)
would need a task group of its own, and it must never ``yield`` inside one (STYLE.md). So the
handler's generator waits, in the host task, on one event of the merge that every source can
set. Two kinds of source:

- a **wakeable** source (``Wakeable``: a hub subscription) buffers its items itself and calls
  the merge's ``wake`` when it has more or has ended. The merge reads it with ``poll`` in the
  host task: no task, no stream, and what queued while the handler was busy is handed over
  without waiting again (one wake-up for a burst). This is the fan-out hot path: a published
  message costs each subscriber one wake-up of its handler, as when it iterates the
  subscription directly;
- any other source (the receiver among them) is read by one **pump**, a helper task of the
  connection's own group (``Connection.start_helper``), which parks each item in the merge
  and waits until the handler has taken it: a pump holds at most one item, so a handler that
  does not keep up holds it back (the receiver's pump stops reading, and the client is slowed
  down, as when the handler reads directly).

An error of a source (``WSDisconnect`` from the receiver, ``SlowSubscriber`` from a
subscription) is raised in the generator after the items that came before it. The pumps are
cancelled when the merge is closed, and in any case when the handler ends. Handlers that do
not merge pay nothing: no task, no event.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable
from types import TracebackType
from typing import Any, Protocol

import anyio
from anyio.lowlevel import checkpoint

#: What ``Wakeable._merge_poll`` returns when it has nothing yet (no exception: this is the
#: path of every wait).
NOTHING: Any = object()


class Wakeable(Protocol):
    """A source the merge reads in the handler's own task (``Subscription`` is one)."""

    def _merge_poll(self) -> Any:
        """Returns the next item at once, or ``NOTHING``.

        Raises:
            StopAsyncIteration: the source has ended.
            Exception: the source's error (then it has ended).
        """

    def _merge_wake(self, wake: Callable[[], None] | None) -> bool:
        """Calls ``wake`` (no argument) from now on whenever an item arrives or the source
        ends; None stops it. Returns False when the source cannot (read it with a pump)."""


class _Parked:
    """An item (or error) a pump hands over, and the event the pump waits on until it is
    taken."""

    __slots__ = ("error", "item", "source", "taken")

    def __init__(self, source: object, item: Any, error: Exception | None) -> None:
        self.source = source
        self.item = item
        self.error = error
        self.taken = anyio.Event()


class Merged:
    """The merged iteration ``receiver.merge(...)`` returns: ``async for source, item in ...``
    gives each item with the source it came from (the receiver for what the client sent).

    Iteration raises what a source raised (``WSDisconnect`` when the client left, once what it
    sent before was handed over) and ends when every source has ended. Use it as ``async
    with`` (or call ``aclose()``) to stop the pumps before the handler ends, for example to
    read the receiver directly again; an item a pump was holding is then dropped.
    """

    __slots__ = ("_bell", "_closed", "_held", "_next", "_parked", "_pumps", "_scopes",
                 "_sources", "_start_helper", "_waiting", "_wakeable")  # fmt: skip

    def __init__(
        self,
        start_helper: Callable[..., anyio.CancelScope],
        sources: tuple[AsyncIterable[Any], ...],
    ) -> None:
        self._start_helper = start_helper
        self._sources: tuple[AsyncIterable[Any], ...] | None = sources  # None once started
        self._wakeable: list[Wakeable] = []  # read in the host task, until each ends
        self._next = 0  # the wakeable source to look at first (round robin)
        self._parked: list[_Parked] = []  # what the pumps hand over, in arrival order (few)
        self._scopes: list[anyio.CancelScope] = []
        self._pumps = 0  # running
        # What the handler waits on, released by a wake while it waits. Not an Event per
        # wait: at every publish each merging subscriber would allocate one (five objects
        # on asyncio), and at 1,000 subscribers the garbage collector's pauses showed in
        # the tail latency; a semaphore's wait is one future on asyncio, none on trio.
        self._bell = anyio.Semaphore(0, fast_acquire=True)
        self._waiting = False
        self._held: tuple[Any, Any] | None = None
        self._closed = False

    def __aiter__(self) -> Merged:
        return self

    async def __anext__(self) -> tuple[Any, Any]:
        """Returns the next ``(source, item)``, waiting for one (the pumps start on the first
        call).

        Raises:
            StopAsyncIteration: every source has ended, or the merge was closed.
            Exception: whatever a source raised, ``WSDisconnect`` from the receiver included.
        """
        if self._sources is not None:
            self._start(self._sources)
        held = self._held
        if held is not None:  # taken before a checkpoint that was cancelled
            self._held = None
            return held
        waited = False
        while True:
            found = self._take()
            if found is not None:
                if not waited:  # still a checkpoint, or a busy source starves the others
                    self._held = found
                    await checkpoint()
                    self._held = None
                return found
            if self._closed or (not self._pumps and not self._wakeable):
                raise StopAsyncIteration
            self._waiting = True
            try:
                await self._bell.acquire()
            finally:
                self._waiting = False
            waited = True

    def _take(self) -> tuple[Any, Any] | None:
        """Returns an item that is there (what a pump parked first), or None.

        Raises:
            Exception: the error a source ended with.
        """
        if self._closed:
            return None
        if self._parked:
            parked = self._parked.pop(0)
            parked.taken.set()
            if parked.error is not None:
                raise parked.error
            return parked.source, parked.item
        wakeable = self._wakeable
        step = 0
        while step < len(wakeable):
            index = (self._next + step) % len(wakeable)
            source = wakeable[index]
            try:
                item = source._merge_poll()
                if item is NOTHING:
                    step += 1
                    continue
            except StopAsyncIteration:  # it ended: the others go on
                self._drop(index)
                continue
            except Exception:  # it failed: raised in the handler, after what came before
                self._drop(index)
                raise
            self._next = index + 1
            return source, item
        return None

    def _drop(self, index: int) -> None:
        self._wakeable.pop(index)._merge_wake(None)
        self._next = 0

    def _wake(self) -> None:
        if self._waiting:  # else the handler looks at every source before it waits
            self._waiting = False
            self._bell.release()

    def _start(self, sources: tuple[AsyncIterable[Any], ...]) -> None:
        self._sources = None
        for source in sources:
            merge_wake = getattr(source, "_merge_wake", None)
            if merge_wake is not None and merge_wake(self._wake):
                self._wakeable.append(source)  # type: ignore[arg-type]
                continue
            self._scopes.append(self._start_helper(self._pump, source))
            self._pumps += 1

    async def _pump(self, source: AsyncIterable[Any]) -> None:
        """Hands each item of ``source`` to the merge, then its error if it raised one."""
        try:
            try:
                async for item in source:
                    await self._hand_over(source, item, None)
            except Exception as error:  # the generator raises it: not this task's to handle
                await self._hand_over(source, None, error)
        finally:
            self._pumps -= 1
            self._wake()  # the handler may be waiting for the last pump

    async def _hand_over(self, source: object, item: Any, error: Exception | None) -> None:
        if self._closed:
            return
        parked = _Parked(source, item, error)
        self._parked.append(parked)
        self._wake()
        await parked.taken.wait()

    async def aclose(self) -> None:
        """Stops the pumps; iteration ends."""
        self._close()

    def _close(self) -> None:
        self._closed = True
        self._sources = None
        for scope in self._scopes:
            scope.cancel()
        for source in self._wakeable:
            source._merge_wake(None)
        self._wakeable.clear()
        for parked in self._parked:  # dropped: their pumps are cancelled anyway
            parked.taken.set()
        self._parked.clear()
        self._wake()

    async def __aenter__(self) -> Merged:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._close()


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
