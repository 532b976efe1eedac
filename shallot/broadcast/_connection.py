"""Helpers for coredis connections: describing a failure, a URL without its password, and a
connection class that cleans up after itself."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import anyio
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from coredis.connection import BaseConnection

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup


def describe(error: BaseException, timeout: float | None = None) -> str:
    """Returns ``error`` as a few words for a log line or a message: a group (a task group
    wraps what failed in it) by its first error that is not a cancellation, and how many more
    there are; a bare ``TimeoutError`` (a deadline of ``timeout`` seconds ran out) by how long
    it waited."""
    leaves = list(_leaves(error))
    errors = [leaf for leaf in leaves if isinstance(leaf, Exception)] or leaves
    first = errors[0]
    if type(first) is TimeoutError and not str(first) and timeout is not None:
        text = f"timed out after {timeout:g}s"
    else:
        text = f"{type(first).__name__}: {first}" if str(first) else type(first).__name__
    more = len(errors) - 1
    if more:
        text += f"; {more} more error{'s' if more > 1 else ''}"
    return text


def _leaves(error: BaseException) -> Iterator[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    else:
        yield error


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
