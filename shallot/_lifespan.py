"""The app's lifetime: ASGI ``lifespan`` startup and shutdown around one exit stack.

State lives in one ``AppState`` per built app (no module globals, SPEC §2). Startup enters the
user's ``lifespan`` context manager, then calls ``on_start``; shutdown calls ``on_stop``, then
leaves the context manager, in the same task that entered it (anyio requires that of task
groups opened inside it). HTTP and websocket requests that arrive while startup runs wait for it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from typing import Any, TypeAlias

import anyio

from ._errors import ASGIProtocolError
from ._types import Receive, Scope, Send

logger = logging.getLogger("shallot")

Hook: TypeAlias = Callable[[Scope], Awaitable[Any]]
LifespanFactory: TypeAlias = Callable[[], AbstractAsyncContextManager[Any]]

#: Bound on leaving the user's lifespan context when the server cancels the lifespan task.
_EXIT_TIMEOUT = 10.0


class AppState:
    """Per-app state: the config handed to requests and whether startup has finished."""

    __slots__ = ("_started", "config", "failed", "ready")

    def __init__(self) -> None:
        self.config: dict[str, Any] = {}
        self.ready = True  # no lifespan at all (a bare ASGI call): requests proceed at once
        self.failed = False
        self._started: anyio.Event | None = None

    def _begin_startup(self) -> None:
        self.ready = False
        self._started = anyio.Event()

    def _end_startup(self, failed: bool) -> None:
        self.failed = failed
        self.ready = True
        if self._started is not None:
            self._started.set()

    async def wait_ready(self) -> None:
        """Waits until a startup in progress has finished."""
        if self._started is not None:
            await self._started.wait()


def _merge(config: dict[str, Any], extra: Any, source: str) -> None:
    if extra is None:
        return
    if not isinstance(extra, dict):
        raise TypeError(f"{source} gave {extra!r}; it must give a dict or None")
    config.update(extra)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


async def run_lifespan(state: AppState, scope: Scope, receive: Receive, send: Send,
                       on_start: Hook | None, on_stop: Hook | None,
                       lifespan: LifespanFactory | None) -> None:
    """Runs the ASGI lifespan protocol for one app (ASGI lifespan spec 2.0)."""
    message = await receive()
    if message["type"] != "lifespan.startup":
        raise ASGIProtocolError(f"lifespan began with {message['type']!r}, not lifespan.startup")
    state._begin_startup()
    stack = AsyncExitStack()
    closed = False
    try:
        try:
            config: dict[str, Any] = {}
            if lifespan is not None:
                _merge(config, await stack.enter_async_context(lifespan()), "lifespan")
            if on_start is not None:
                _merge(config, await on_start(scope), "on_start")
        except Exception as error:
            logger.exception("startup failed")
            closed = True
            await _close_quietly(stack)
            state._end_startup(failed=True)
            await send({"type": "lifespan.startup.failed", "message": _describe(error)})
            return
        state.config = config
        state._end_startup(failed=False)
        await send({"type": "lifespan.startup.complete"})

        message = await receive()
        if message["type"] != "lifespan.shutdown":
            raise ASGIProtocolError(f"expected lifespan.shutdown, got {message['type']!r}")
        failure: BaseException | None = None
        if on_stop is not None:
            try:
                await on_stop(scope)
            except Exception as error:
                logger.exception("on_stop failed")
                failure = error
        closed = True
        try:
            await stack.aclose()
        except Exception as error:
            logger.exception("leaving the lifespan context failed")
            failure = failure or error
        if failure is None:
            await send({"type": "lifespan.shutdown.complete"})
        else:
            await send({"type": "lifespan.shutdown.failed", "message": _describe(failure)})
    finally:
        if not closed:  # cancelled by the server: still leave the user's context
            if not state.ready:
                state._end_startup(failed=True)
            with anyio.CancelScope(shield=True), anyio.move_on_after(_EXIT_TIMEOUT):
                await _close_quietly(stack)


async def _close_quietly(stack: AsyncExitStack) -> None:
    try:
        await stack.aclose()
    except Exception:
        logger.exception("leaving the lifespan context failed")


