"""The ``Receiver``: what the client sends, as ``str`` or ``bytes``, in order.

The handler's side of reading (SPEC §4). While it may (``WSState.may_read_directly``: nothing
queued, the receive task holds nothing) the handler calls ASGI ``receive`` itself: the hot path.
Otherwise it takes what the runner's receive task queued, waiting for it while the task reads.
Every message is interpreted by ``WSState.received``'s rules; on the hot path, a text within every
limit while the state is ``calm`` is handed over with no call (``_ws_state`` says why).
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Any

import anyio

from ._errors import WSDisconnect
from ._merge import Merged
from ._taskgroup import Connection, _set
from ._ws_messages import INVALID_PAYLOAD, json_value


class Receiver:
    """What the client sends, as ``str`` or ``bytes``, in order: ``async for message in
    receiver`` or ``await receiver.receive()``.

    Once every message that had arrived is handed over, a client disconnect raises
    ``WSDisconnect`` (with the client's close code).
    """

    __slots__ = ("_connection", "_text_limit")

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        # the longest text that passes with no call (the hot path): -1 when a meter counts
        self._text_limit = connection.limits.unmetered_text_limit

    def __repr__(self) -> str:
        return f"<Receiver of {self._connection.scope.get('path', '?')!r}>"

    def __aiter__(self) -> Receiver:
        return self

    async def __anext__(self) -> str | bytes:
        """Returns the next message from the client: what was queued first, then ASGI receive
        directly (one frame: idle connections sit here).

        Raises:
            WSDisconnect: the client left and everything it sent before was handed over.
        """
        connection = self._connection
        while True:
            # calm implies WSState.may_read_directly (the hot path reads one field)
            if not connection.calm and not connection.may_read_directly():
                payload = await self._queued(connection)
                if payload is not None:
                    return payload
                continue
            connection.direct_reading = True
            try:
                message = await connection.receive()
            finally:
                connection.direct_reading = False
                connection.reads += 1
            # WSState.received's first case (the hot path): a text within every limit, with
            # no meter to count it, while the connection is calm
            data = message.get("text")
            if not (
                type(data) is str
                and message["type"] == "websocket.receive"
                and len(data) <= self._text_limit
                and connection.calm
            ):
                data = connection.received(message)
                if type(data) is int:
                    connection.carry_out(data)
                    continue
                if connection.parked < 0:  # it left the watch while it sat in this read
                    connection.watch.join(connection)
            return data  # type: ignore[return-value]

    async def _queued(self, connection: Connection) -> str | bytes | None:
        """Returns what the receive task queued, waiting for it while the task reads; None
        once the handler may read directly again.

        Raises:
            WSDisconnect: the client has left and nothing is left.
        """
        while True:
            payload = connection.take()
            if payload is not None:
                _set(connection._room)
                return payload
            if connection.client_code is not None:
                raise connection.disconnect()
            if not connection.task_reading:
                return None
            connection.handler_waiting = True  # the receive task reads: wait for it
            connection._arrived = event = anyio.Event()
            try:
                await event.wait()
            finally:
                connection.handler_waiting = False

    receive = __anext__

    async def json(self) -> Any:
        """Returns the next message parsed as JSON (issue 16).

        Raises:
            WSDisconnect: the client left; or the message was a binary frame or not JSON:
                the connection then closes with 1007 and a reason naming the problem, which
                the ``WSDisconnect`` carries too.
        """
        payload = await Receiver.__anext__(self)
        try:
            return json_value(payload)
        except ValueError as error:
            reason = str(error)
            self._connection.close_with(INVALID_PAYLOAD, reason)
            raise WSDisconnect(INVALID_PAYLOAD, reason) from None

    def merge(self, *sources: AsyncIterable[Any]) -> Merged:
        """Returns one iteration over what the client sends and what ``sources`` (a hub
        subscription, say) give, as ``(source, item)`` pairs in the order they come, where
        ``source`` is this receiver or the source the item came from. No task to manage and
        no ``yield`` inside a task group: the sources are read by helper tasks of the
        connection (see ``_merge``), which end with the handler or with the merge's
        ``async with``. ``WSDisconnect`` is raised as when reading the receiver directly."""
        return Merged(self._connection.start_helper, (self, *sources))

    @property
    def dropped(self) -> int:
        """How many messages were dropped because the handler was not reading (pure push)."""
        return self._connection.dropped


class JSONReceiver(Receiver):
    """The receiver of a ``@websocket(json=True)`` handler: each message parsed as JSON, in
    order (``async for value in receiver``, ``await receiver.receive()``, ``merge``). A binary
    frame or text that is not JSON closes the connection with 1007 (see ``Receiver.json``)."""

    __slots__ = ()

    def __aiter__(self) -> JSONReceiver:
        return self

    async def __anext__(self) -> Any:
        """Returns the next message parsed as JSON.

        Raises:
            WSDisconnect: the client left, or sent what is not JSON text (closed with 1007).
        """
        return await self.json()

    receive = __anext__
