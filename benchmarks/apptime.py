"""The app's own time per HTTP request inside a running server (issue 18).

wrk on two shared cores cannot resolve a change of a microsecond or two per request: one server
process to the next varies by several per cent, and hypercorn's own protocol work is ~100 times
the app's. So ``e2e.py`` also measures, inside each server process, what the app itself costs:

- ``Probe.wrap(app)`` runs in the server process. It times one HTTP request in every
  ``every`` (4 by default) from the app's first line to its return, minus the time the app
  spent awaiting the server's ``send`` and ``receive``: what is left is the app's own work (its
  CPU time, plus whatever preempted the process meanwhile). The other requests pass through
  one extra coroutine frame. Websocket and lifespan scopes pass through untimed. The sends are
  timed inside hypercorn's own ``send`` method, so the app is handed the server's very
  ``send`` (shallot treats a server's send it knows differently from an unknown wrapper).
- The samples go to a ring of ``SLOTS`` nanosecond counts in a file the benchmark process
  mapped too (``/dev/shm`` where there is one), with a running count in front, so that process
  reads the samples of exactly one load run (``mark()`` before, ``since(mark)`` after) while
  the server keeps serving: sampled over the whole run, nothing to stop or signal.

The probe's own cost (a frame inside ``send`` and around ``receive``, two clock reads per
await) is inside every contender's figure alike, so the raw column is the floor *including*
the probe, and
``shallot - raw`` is the framework's own time per request.
"""

from __future__ import annotations

import contextvars
import mmap
import os
import statistics
import struct
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

#: Samples the ring holds: more than any one load run of the benchmarks records.
SLOTS = 1 << 18
_HEAD = struct.Struct("<q")  # the running count of samples
_SAMPLE = struct.Struct("<I")  # one sample, in ns (clamped to 2**32 - 1)
_SIZE = _HEAD.size + SLOTS * _SAMPLE.size


#: The request being timed in this task, if it is: what ``_time_sends`` adds the sends to.
_timing: contextvars.ContextVar[Timed | None] = contextvars.ContextVar("timing", default=None)


class Timed:
    """One timed request: the time it spent awaiting the server's ``send`` and ``receive``."""

    __slots__ = ("_receive", "waited")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.waited = 0

    async def receive(self) -> Message:
        started = time.perf_counter_ns()
        try:
            return await self._receive()
        finally:
            self.waited += time.perf_counter_ns() - started


def _time_sends() -> None:
    """Times hypercorn's own ``send`` in place (its class's method), for the request being timed.

    The app keeps the server's very ``send``, a method of hypercorn's stream: shallot knows
    that one, and bounds it by its response timeout only once it waits (``shallot._sending``);
    a wrapper of the probe's would be a ``send`` shallot does not know, given a scope up front.
    """
    from hypercorn.protocol.http_stream import HTTPStream

    original = HTTPStream.app_send
    if getattr(original, "timed", False):
        return

    async def app_send(stream: HTTPStream, message: Any) -> None:
        timed = _timing.get()
        if timed is None:
            await original(stream, message)
            return
        started = time.perf_counter_ns()
        try:
            await original(stream, message)
        finally:
            timed.waited += time.perf_counter_ns() - started

    app_send.timed = True  # type: ignore[attr-defined]
    HTTPStream.app_send = app_send  # type: ignore[method-assign]


class Probe:
    """A ring of app-time samples in a file shared by the server and the benchmark process."""

    def __init__(self, path: str | None = None) -> None:
        """Creates the ring (``path`` None: a new temporary file) or opens an existing one."""
        self.owner = path is None
        if path is None:
            directory = "/dev/shm" if os.path.isdir("/dev/shm") else None
            fd, path = tempfile.mkstemp(prefix="shallot-apptime-", dir=directory)
            os.ftruncate(fd, _SIZE)
        else:
            fd = os.open(path, os.O_RDWR)
        self.path = path
        try:
            self._map = mmap.mmap(fd, _SIZE)
        finally:
            os.close(fd)

    def close(self) -> None:
        self._map.close()
        if self.owner:
            os.unlink(self.path)

    # -- the server side ------------------------------------------------------------------------

    def wrap(self, app: ASGIApp, every: int = 4) -> ASGIApp:
        """Returns ``app`` with one HTTP request in ``every`` timed into the ring."""
        _time_sends()
        ring, clock = self._map, time.perf_counter_ns
        pack_head, pack_sample = _HEAD.pack_into, _SAMPLE.pack_into
        count = _HEAD.unpack_from(ring, 0)[0]
        skip = 0

        async def timed(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
            nonlocal count, skip
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            if skip:
                skip -= 1
                await app(scope, receive, send)
                return
            skip = every - 1
            timed = Timed(receive)
            token = _timing.set(timed)
            started = clock()
            try:
                await app(scope, timed.receive, send)
            finally:
                spent = clock() - started - timed.waited
                _timing.reset(token)
                pack_sample(
                    ring, _HEAD.size + (count % SLOTS) * _SAMPLE.size, min(spent, 2**32 - 1)
                )
                count += 1
                pack_head(ring, 0, count)

        return timed

    # -- the benchmark side ---------------------------------------------------------------------

    def mark(self) -> int:
        """Returns the count of samples so far: pass it to ``since`` after the load run."""
        return int(_HEAD.unpack_from(self._map, 0)[0])

    def since(self, mark: int) -> list[float]:
        """Returns the samples recorded after ``mark``, in µs (the last ``SLOTS`` at most)."""
        count = self.mark()
        first = max(mark, count - SLOTS)
        return [
            _SAMPLE.unpack_from(self._map, _HEAD.size + (index % SLOTS) * _SAMPLE.size)[0] / 1e3
            for index in range(first, count)
        ]


def summary(samples: list[float]) -> tuple[float, float]:
    """Returns (median, mean) of one run's samples in µs; NaN for none."""
    if not samples:
        return float("nan"), float("nan")
    return statistics.median(samples), statistics.fmean(samples)
