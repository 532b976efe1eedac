"""Helpers for coredis connections: describing a failure, a URL without its password, and a
connection class that cleans up after itself."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import anyio
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from coredis.connection import BaseConnection

from .._errors import single_exception


def describe(error: BaseException) -> str:
    error = single_exception(error)  # the lone error a task group wrapped
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def for_display(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


def tidy(connection_class: type[BaseConnection]) -> type[BaseConnection]:
    """Returns a subclass of coredis' connection class that closes its memory object streams
    when it is done, also when it never connected (coredis 6 leaves them to the garbage
    collector then, which warns about each: a ResourceWarning per failed reconnection)."""

    class TidyConnection(connection_class):  # type: ignore[valid-type,misc]
        # ASYNC128: coredis' run() calls task_status.started(); this only wraps it.
        async def run(  # noqa: ASYNC128
            self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
        ) -> None:
            try:
                await super().run(task_status=task_status)
            finally:
                for value in list(vars(self).values()):
                    if isinstance(value, (MemoryObjectSendStream, MemoryObjectReceiveStream)):
                        value.close()

    TidyConnection.__name__ = TidyConnection.__qualname__ = f"Tidy{connection_class.__name__}"
    return TidyConnection
