"""What the client sends: the bounded inbound stream, the receive task and the Receiver.

Whoever reads from ASGI ``receive`` (the handler directly, through its Receiver, or the receive
task on its behalf) hands the message to ``arrived``, the one place that interprets it. The
receive task runs only while the handler is away from its receiver (the watch, ``_watch``,
starts it) or the client's side of the close is awaited; it reads into ``Inbound``, which
bounds what a connection holds in messages and bytes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterable
from typing import TYPE_CHECKING, Any

import anyio

from ._merge import Merged
from ._types import Message
from ._ws_messages import MESSAGE_TOO_BIG, incoming, size_of

if TYPE_CHECKING:
    from ._taskgroup import Connection

logger = logging.getLogger("shallot")


class Inbound:
    """The bounded inbound stream the receive task fills while the handler is away: at most
    ``max_queue`` messages and ``max_queue_bytes`` bytes (a larger message is let in alone).

    A full buffer makes the receive task wait (backpressure: the server stops reading the
    socket, so the client slows down and nothing is lost). A handler that has still not read
    ``push_only_after`` seconds into the connection is pure server push: a full buffer then
    drops what arrives, so memory stays bounded and the receive task keeps reading, which is
    how it sees the disconnect.
    """

    __slots__ = (
        "_space",
        "bytes",
        "connection",
        "count",
        "dropped",
        "gone",
        "push_only_at",
        "rx",
        "tx",
    )

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.tx, self.rx = anyio.create_memory_object_stream[str | bytes](math.inf)
        self.count = 0
        self.bytes = 0
        self.dropped = 0
        self.gone = False
        # A handler that has not read by then is pure push: a full queue then drops.
        self.push_only_at = connection.opened_at + connection.options.push_only_after
        self._space: anyio.Event | None = None

    @property
    def reading(self) -> bool:
        """Whether the handler has read (or waits to read) since the connection opened."""
        return not self.gone and (self.connection.reads > 0 or self.connection.handler_waiting)

    def _full(self, size: int) -> bool:
        options = self.connection.options
        return self.count >= options.max_queue or (
            self.count > 0 and self.bytes + size > options.max_queue_bytes
        )

    def offer(self, payload: str | bytes) -> bool:
        """Queues one message from the client, or drops it for a pure-push handler (or one
        that has ended); returns False when there is no room yet and the message must wait."""
        size = size_of(payload)
        if self._full(size):
            if self.gone:  # the handler has ended: nobody will read it
                return True
            if self.reading or anyio.current_time() < self.push_only_at:
                return False  # hold the client back until the handler makes room
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                logger.debug("websocket handler does not read; %d messages dropped", self.dropped)
            return True
        try:
            self.tx.send_nowait(payload)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return True  # the handler is gone: nobody will read it
        self.count += 1
        self.bytes += size
        return True

    async def wait_for_room(self) -> None:
        """Waits for the handler to take a message, or for a handler that has not read yet to
        become pure push (``push_only_after``)."""
        self._space = anyio.Event()
        if self.reading:
            await self._space.wait()
        else:
            with anyio.move_on_at(self.push_only_at):
                await self._space.wait()

    def taken(self, payload: str | bytes) -> None:
        """Accounts for a message the handler took."""
        self.count -= 1
        self.bytes -= size_of(payload)
        self.connection.reads += 1
        self._wake()

    def release(self) -> None:
        """The handler is gone: stop holding the receive task back."""
        self.gone = True
        self.rx.close()
        self._wake()

    def close(self) -> None:
        """Closes both ends (the connection is over)."""
        self.tx.close()
        self.release()

    def _wake(self) -> None:
        if self._space is not None:
            self._space.set()
            self._space = None


def arrived(connection: Connection, message: Message) -> str | bytes | None:
    """Returns the payload of a message from the client, or None when it carried none
    for the handler (a disconnect, an oversized message, a message after the close)."""
    kind = message["type"]
    if kind == "websocket.receive":
        payload = message.get("text")
        if type(payload) is not str or len(payload) > connection.options.text_limit:
            payload = incoming(message)  # bytes, or a text that may be too big: measure it
            if size_of(payload) > connection.options.max_message_size:
                connection.request_close(MESSAGE_TOO_BIG, "message too big")
                return None
        if connection.server_closed or not connection.handler_running:
            return None
        return payload
    if kind == "websocket.disconnect":
        connection.client_code = int(message.get("code") or 1005)
        connection.client_reason = str(message.get("reason") or "")
        if connection.handler_running and not connection.server_closed:
            connection.client_initiated = True
        if connection.sending:
            # a send to nobody: stop it (the handler gets WSDisconnect at its yield)
            connection.stop()
        _set(connection._client_left)
        connection.end()
    return None


async def receive_task(connection: Connection) -> None:
    """The receive task: reads on the handler's behalf while it is away from its receiver (the
    watch started it) and, once the end is decided, the client's side of the close."""
    try:
        await _read_for_handler(connection)
    finally:
        connection.receive_task_runs = False
        if connection.inbound is not None and connection.client_code is not None:
            connection.inbound.tx.close()  # how a waiting Receiver learns the client left


async def _read_for_handler(connection: Connection) -> None:
    inbound = connection.inbound
    if inbound is None:  # made the first time the handler is away: most connections never are
        inbound = connection.inbound = Inbound(connection)
    while connection.client_code is None:
        reads = connection.reads
        # From receive() until the message is queued, the handler must not read directly,
        # or it would overtake the message in hand.
        connection.task_reading = True
        try:
            payload = arrived(connection, await connection.receive())
            while payload is not None and not inbound.offer(payload):
                await inbound.wait_for_room()
        finally:
            connection.task_reading = False
        if connection.handler_running and (connection.handler_waiting or connection.reads != reads):
            return  # the handler reads again: let it read directly


class Receiver:
    """What the client sends, as ``str`` or ``bytes``, in order: ``async for message in
    receiver`` or ``await receiver.receive()``.

    Once every message that had arrived is handed over, a client disconnect raises
    ``WSDisconnect`` (with the client's close code).
    """

    __slots__ = ("_connection",)

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def __repr__(self) -> str:
        return f"<Receiver of {self._connection.scope.get('path', '?')!r}>"

    def __aiter__(self) -> Receiver:
        return self

    async def __anext__(self) -> str | bytes:
        """Returns the next message from the client: the inbound stream first, then ASGI
        receive directly unless the receive task holds it (one frame: idle connections sit
        here).

        Raises:
            WSDisconnect: the client left and everything it sent before was handed over.
        """
        connection = self._connection
        while True:
            inbound = connection.inbound  # None until the handler was first away
            if connection.client_code is not None or (
                inbound is not None and (inbound.count or connection.task_reading)
            ):
                return await self._queued(connection)
            connection.direct_reading = True
            try:
                message = await connection.receive()
            finally:
                connection.direct_reading = False
                connection.reads += 1
            data = arrived(connection, message)
            if data is None:
                continue
            if connection.parked < 0:  # it left the watch while it sat in this read
                connection.watch.join(connection)
            return data

    async def _queued(self, connection: Connection) -> str | bytes:
        """Returns what the receive task queued, waiting for it while the task reads; raises
        ``WSDisconnect`` once the client has left and nothing is left."""
        inbound = connection.inbound
        if inbound is not None:
            try:
                payload = inbound.rx.receive_nowait()
            except anyio.WouldBlock:
                pass
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                raise connection._disconnect() from None
            else:
                inbound.taken(payload)
                return payload
        if connection.client_code is not None or inbound is None:
            raise connection._disconnect()
        connection.handler_waiting = True  # the receive task reads: wait for what it queues
        try:
            payload = await inbound.rx.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise connection._disconnect() from None
        finally:
            connection.handler_waiting = False
        inbound.taken(payload)
        return payload

    receive = __anext__

    def merge(self, *sources: AsyncIterable[Any]) -> Merged:
        """Returns one iteration over what the client sends and what ``sources`` (a hub
        subscription, say) give, as ``(source, item)`` pairs in the order they come, where
        ``source`` is this receiver or the source the item came from. No task to manage and
        no ``yield`` inside a task group: the sources are read by helper tasks of the
        connection (see ``_merge``), which end with the handler or with the merge's
        ``async with``. ``WSDisconnect`` is raised as when reading the receiver directly."""
        return Merged(self._connection, (self, *sources))

    @property
    def dropped(self) -> int:
        """How many messages were dropped because the handler was not reading (pure push)."""
        inbound = self._connection.inbound
        return 0 if inbound is None else inbound.dropped


def _set(event: anyio.Event | None) -> None:  # shared with _taskgroup
    if event is not None:
        event.set()
