"""Running a hub: the in-memory broker, the choice of broker by URL, ``open_hub`` and
``hub_lifespan``.

``open_hub`` runs the hub's broker (for Redis, its listener task) in a task group of its own
for the duration of an ``async with``, and on the way out closes the hub first, so that the
broker stops in order (the listener before the client it uses); ``hub_lifespan`` makes that
the lifespan of an app (``build_server(lifespan=...)``).
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio

from .._checks import positive
from .._errors import single_exception
from ._broker import Broker
from ._checks import check_buffer, check_overflow
from ._errors import BrokerUnavailable
from ._history import History, history_rules
from ._hub import Fanout, Hub
from ._memory import MemoryBroker
from ._subscription import Overflow

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup


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
            f"a {scheme}:// hub needs coredis: install shallot's 'redis' extra (from a checkout: "
            f"pip install -e '.[redis]') ({error})"
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
    history: Mapping[str, History] | None = None,
    presence_ttl: float = 30.0,
) -> AsyncIterator[Hub]:
    """Runs a hub for the duration of the ``async with``: in memory when ``url`` is None,
    else through the Redis / Valkey server at ``url`` (``redis://``, ``rediss://``,
    ``unix://``; needs ``shallot[redis]``), whose channel names get ``prefix``.

    ``max_buffer`` and ``overflow`` are the defaults of ``subscribe``. With a broker, the
    hub waits up to ``connect_timeout`` seconds for it at the start (and for each publish
    and subscription); when the connection drops, every subscriber gets a ``Gap`` and the
    hub reconnects, waiting ``reconnect_min`` seconds at first, doubling up to
    ``reconnect_max``. On the way out, subscriptions end and publishing raises.

    ``history`` names the channels that keep one: ``{"room:*": History(size=100, ttl=600)}``
    (a key is a channel, or a prefix ending in ``*``); their messages get positions, and
    ``subscribe(channel, since=...)`` recovers what a subscriber missed (see ``History``).
    With a broker, a process's presence entries (``subscribe(member=...)``) are renewed every
    third of ``presence_ttl`` seconds, and expire that long after it died without leaving.

    Raises:
        BrokerUnavailable: the broker cannot be reached at the start.
        ValueError: an option is out of range, or the URL's scheme unknown.
    """
    rules = history_rules(history)
    check_buffer(max_buffer)
    check_overflow(overflow)
    for name, value in (
        ("connect_timeout", connect_timeout),
        ("reconnect_min", reconnect_min),
        ("reconnect_max", reconnect_max),
        ("presence_ttl", presence_ttl),
    ):
        positive(name, value, unit="seconds")
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, not {prefix!r}")
    options = {
        "prefix": prefix,
        "connect_timeout": float(connect_timeout),
        "reconnect_min": float(reconnect_min),
        "reconnect_max": float(max(reconnect_min, reconnect_max)),
        "presence_ttl": float(presence_ttl),
    }
    broker = _broker_for(url, options)
    hub = Hub(broker, max_buffer=max_buffer, overflow=overflow, history=rules)
    started = False
    try:
        async with anyio.create_task_group() as group:
            try:
                await group.start(broker.run, Fanout(hub))
                started = True
                yield hub
            finally:
                hub._close()  # the broker's task ends by itself, in order (bounded)
    except BaseExceptionGroup as error:  # the broker failed to start: say why, unwrapped
        lone = single_exception(error)
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
    history: Mapping[str, History] | None = None,
    presence_ttl: float = 30.0,
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
            history=history,
            presence_ttl=presence_ttl,
        ) as hub:
            yield {key: hub}

    return lifespan
