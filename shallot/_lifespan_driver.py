"""The server's side of the ASGI lifespan protocol, for the two places shallot plays server.

``TestClient`` runs an app's startup and shutdown around its ``async with`` block, and
``serve`` runs them around hypercorn (so that it can stop hypercorn early and still run the
app's shutdown last). Both follow what servers do: an app that fails before it reads
``lifespan.startup`` has no lifespan support, and the server goes on without one.
"""

from __future__ import annotations

import math
from typing import Any

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._errors import ShallotError
from ._types import ASGIApp, Message

__all__ = ["LifespanDriver", "LifespanError"]


class LifespanError(ShallotError, RuntimeError):
    """The app reported a failed lifespan startup or shutdown (its message is the reason)."""


class LifespanDriver:
    """Sends ``lifespan.startup`` and ``lifespan.shutdown`` to an app and reads its answers.

    ``state`` is the lifespan scope's ``"state"`` dict: what the app puts there during startup,
    servers copy into each request's scope.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self._to_app: MemoryObjectSendStream[Message] | None = None
        self._from_app: MemoryObjectReceiveStream[Message] | None = None
        self._scope = anyio.CancelScope()

    async def start(self, task_group: anyio.abc.TaskGroup, *, shield: bool = False) -> None:
        """Runs the app's lifespan call in ``task_group`` and waits for its startup.

        With ``shield``, cancelling the task group leaves the call running: only ``close``
        ends it (a server that is told to stop still runs the app's shutdown).

        Raises:
            LifespanError: the app answered ``lifespan.startup.failed``.
        """
        to_app_tx, to_app_rx = anyio.create_memory_object_stream[Message](math.inf)
        from_app_tx, from_app_rx = anyio.create_memory_object_stream[Message](math.inf)
        self._to_app, self._from_app = to_app_tx, from_app_rx
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }

        async def receive() -> Message:
            try:
                return await to_app_rx.receive()
            except anyio.EndOfStream:  # the server is leaving without a shutdown
                await anyio.sleep_forever()  # noqa: ASYNC120  # until cancelled: that is the end
                raise AssertionError("unreachable") from None

        async def run() -> None:
            with self._scope, to_app_rx, from_app_tx:
                try:
                    await self.app(scope, receive, from_app_tx.send)
                except Exception:  # an app without lifespan support, as servers allow
                    pass

        self._scope.shield = shield
        task_group.start_soon(run)
        try:
            await to_app_tx.send({"type": "lifespan.startup"})
            reply = await from_app_rx.receive()
        except (anyio.BrokenResourceError, anyio.EndOfStream):  # no lifespan: go on without
            self.close()
            self._to_app = self._from_app = None
            return
        if reply["type"] == "lifespan.startup.failed":
            raise LifespanError(f"lifespan startup failed: {reply.get('message', '')}")

    async def stop(self) -> str | None:
        """Asks the app to shut down; returns the reason it gave if it failed, else ``None``."""
        if self._to_app is None or self._from_app is None:
            return None  # never started, or the app has no lifespan
        try:
            await self._to_app.send({"type": "lifespan.shutdown"})
            reply = await self._from_app.receive()
        except (anyio.BrokenResourceError, anyio.EndOfStream):  # its lifespan already ended
            return None
        if reply["type"] == "lifespan.shutdown.failed":
            return str(reply.get("message", ""))
        return None

    def close(self) -> None:
        """Ends the app's lifespan call: what it still waits for is cancelled."""
        for stream in (self._to_app, self._from_app):
            if stream is not None:
                stream.close()
        self._scope.cancel()
