"""Running a hub: the in-memory broker, the choice of broker by URL, ``open_hub`` and
``hub_lifespan``.

``open_hub`` runs the hub's broker (for Redis, its listener task) in a task group of its own
for the duration of an ``async with``, and on the way out closes the hub first, so that the
broker stops in order (the listener before the client it uses); ``hub_lifespan`` makes that
the lifespan of an app (``build_server(lifespan=...)``).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
from anyio.abc import TaskStatus
from anyio.lowlevel import checkpoint

from ._errors import BrokerUnavailable
from ._hub import Broker, Hub, check_buffer, check_overflow
from ._subscription import Overflow

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup


class MemoryBroker:
    """One process, no network: a published message goes straight to the hub's subscribers."""

    connected = True

    def __init__(self) -> None:
        self._hub: Hub | None = None

    async def run(self, hub: Hub, *, task_status: TaskStatus[None]) -> None:
        self._hub = hub
        task_status.started()

    async def publish(self, channel: str, message: str | bytes) -> None:
        await checkpoint()  # before delivering: a cancelled publish published nothing
        assert self._hub is not None
        self._hub._deliver(channel, message)

    async def add_channel(self, channel: str) -> bool:
        await checkpoint()
        return True

    def remove_channel(self, channel: str) -> None:
        pass

    async def wait_connected(self) -> None:
        await checkpoint()

    def close(self) -> None:
        pass


def _broker_for(url: str | None, options: dict[str, Any]) -> Broker:
    if url is None or url == "memory://":
        return MemoryBroker()
    if not isinstance(url, str):
        raise TypeError(f"the broker URL is a str or None, not {url!r}")
    scheme = url.partition("://")[0].lower()
    if scheme not in ("redis", "rediss", "unix", "valkey", "valkeys"):
        raise ValueError(f"no broker for {scheme!r} URLs: use redis://, rediss://, unix://")
    try:
        from ._redis import RedisBroker
    except ModuleNotFoundError as error:  # pragma: no cover - the extra is not installed
        raise ModuleNotFoundError(
            f"a {scheme}:// hub needs coredis: pip install 'shallot[redis]' ({error})"
        ) from error
    return RedisBroker(url, **options)


@asynccontextmanager
async def open_hub(
    url: str | None = None,
    *,
    max_buffer: int = 64,
    overflow: Overflow = "drop_oldest",
    prefix: str = "",
    connect_timeout: float = 5.0,
    reconnect_min: float = 0.05,
    reconnect_max: float = 5.0,
) -> AsyncIterator[Hub]:
    """Runs a hub for the duration of the ``async with``: in memory when ``url`` is None,
    else through the Redis / Valkey server at ``url`` (``redis://``, ``rediss://``,
    ``unix://``; needs ``shallot[redis]``), whose channel names get ``prefix``.

    ``max_buffer`` and ``overflow`` are the defaults of ``subscribe``. With a broker, the
    hub waits up to ``connect_timeout`` seconds for it at the start (and for each publish
    and subscription); when the connection drops, every subscriber gets a ``Gap`` and the
    hub reconnects, waiting ``reconnect_min`` seconds at first, doubling up to
    ``reconnect_max``. On the way out, subscriptions end and publishing raises.

    Raises:
        BrokerUnavailable: the broker cannot be reached at the start.
        ValueError: an option is out of range, or the URL's scheme unknown.
    """
    check_buffer(max_buffer)
    check_overflow(overflow)
    for name, value in (
        ("connect_timeout", connect_timeout),
        ("reconnect_min", reconnect_min),
        ("reconnect_max", reconnect_max),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, not {prefix!r}")
    options = {
        "prefix": prefix,
        "connect_timeout": float(connect_timeout),
        "reconnect_min": float(reconnect_min),
        "reconnect_max": float(max(reconnect_min, reconnect_max)),
    }
    broker = _broker_for(url, options)
    hub = Hub(broker, max_buffer=max_buffer, overflow=overflow)
    started = False
    try:
        async with anyio.create_task_group() as group:
            try:
                await group.start(broker.run, hub)
                started = True
                yield hub
            finally:
                hub._close()  # the broker's task ends by itself, in order (bounded)
    except BaseExceptionGroup as error:  # the broker failed to start: say why, unwrapped
        lone: BaseException = error
        while isinstance(lone, BaseExceptionGroup) and len(lone.exceptions) == 1:
            lone = lone.exceptions[0]
        if not started and isinstance(lone, BrokerUnavailable):
            raise lone from lone.__cause__  # noqa: ASYNC123  # its cause and traceback go along
        raise


def hub_lifespan(
    url: str | None = None,
    *,
    key: str = "hub",
    max_buffer: int = 64,
    overflow: Overflow = "drop_oldest",
    prefix: str = "",
    connect_timeout: float = 5.0,
    reconnect_min: float = 0.05,
    reconnect_max: float = 5.0,
) -> Callable[[], AbstractAsyncContextManager[dict[str, Hub]]]:
    """Returns a ``lifespan`` for ``build_server``: a hub (see ``open_hub`` for the options)
    that runs from the app's startup to its shutdown, as ``request["config"][key]``.

    Returns:
        A factory of the async context manager ``build_server(..., lifespan=...)`` takes.
    """

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[dict[str, Hub]]:
        async with open_hub(
            url,
            max_buffer=max_buffer,
            overflow=overflow,
            prefix=prefix,
            connect_timeout=connect_timeout,
            reconnect_min=reconnect_min,
            reconnect_max=reconnect_max,
        ) as hub:
            yield {key: hub}

    return lifespan
