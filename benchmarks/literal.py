"""The ``literal`` contender: the websocket runner's design card taken literally (STYLE.md).

Every message goes through a receive task, a memory object stream, the handler's generator,
another stream and a send task, all in one task group per connection, with no shortcut. It
echoes like the other contenders' ``/ws``; it exists so ``ws_shape.py`` can measure what the
runner's hot path (the handler reading ASGI ``receive`` and sending directly while it is the only
reader) saves. Only the websocket scenario; lifespan is answered so servers start it quietly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, MutableMapping
from contextlib import aclosing
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

Message = MutableMapping[str, Any]


async def _echo(incoming: MemoryObjectReceiveStream[str | bytes]) -> AsyncIterator[Message]:
    async for payload in incoming:
        if isinstance(payload, str):
            yield {"type": "websocket.send", "text": payload}
        else:
            yield {"type": "websocket.send", "bytes": payload}


async def _receive_task(receive: Any, to_app: MemoryObjectSendStream[str | bytes]) -> None:
    with to_app:  # closing it is how the handler learns the client left
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return
            text = message.get("text")
            await to_app.send(text if text is not None else message.get("bytes") or b"")


async def _send_task(
    from_app: MemoryObjectReceiveStream[Message], send: Any, scope: anyio.CancelScope
) -> None:
    with from_app:
        async for message in from_app:
            await send(message)
    scope.cancel()  # the handler ended: the connection is over


async def _connection(receive: Any, send: Any) -> None:
    if (await receive())["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    to_app_tx, to_app_rx = anyio.create_memory_object_stream[str | bytes](1)
    from_app_tx, from_app_rx = anyio.create_memory_object_stream[Message](1)
    async with anyio.create_task_group() as tg:
        tg.start_soon(_receive_task, receive, to_app_tx)
        tg.start_soon(_send_task, from_app_rx, send, tg.cancel_scope)
        with from_app_tx, to_app_rx:
            async with aclosing(_echo(to_app_rx)) as outgoing:
                async for message in outgoing:
                    await from_app_tx.send(message)


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Message, receive: Any, send: Any) -> None:
    """The literal-shape echo app (websocket ``/ws``; anything else is refused)."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
    elif scope["type"] == "websocket":
        await _connection(receive, send)
    else:
        raise ValueError(f"the literal contender serves websockets only, not {scope['type']!r}")
