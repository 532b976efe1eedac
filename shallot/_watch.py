"""The watch: one timer per ``@websocket`` endpoint and event loop, not one per connection.

Once per ``watch_interval`` the watch looks at every connection it holds (a few attribute reads
each) for two things:

- a handler that has been away from its receiver for a whole interval gets a receive task
  (``_inbound``), which reads on its behalf, so the client's disconnect is seen however busy
  the handler is;
- a send that has not finished for ``send_timeout`` (the client reads nothing) is cancelled,
  and the client counts as gone.

A handler that sits in one read for ``_LINGER`` intervals sees a disconnect itself: its
connection leaves the watch until that read returns, so idle connections cost the watch
nothing. A busy connection costs a look per interval, not a timer of its own.

The watch's task needs a task group to live in: it borrows the group of one connection it
holds (its host) and moves to another one when the host ends. A watch left with nothing to
look at ends; the next connection starts it again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
from anyio.lowlevel import RunVar

if TYPE_CHECKING:
    from ._taskgroup import Connection
    from .websocket import _Options as Options

#: Looks a handler may sit in one direct read before its connection leaves the watch.
_LINGER = 4

#: The watches of the running event loop, one per endpoint (its options).
_WATCHES: RunVar[dict[int, Watch]] = RunVar("shallot_websocket_watches")


def watch_for(options: Options) -> Watch:
    """Returns the watch of the endpoint whose settings are ``options``, in this event loop."""
    try:
        watches = _WATCHES.get()
    except LookupError:
        watches = {}
        _WATCHES.set(watches)
    watch = watches.get(id(options))
    if watch is None:
        # Keyed by id: the watch holds the options, so the id stays theirs while it lives.
        watch = watches[id(options)] = Watch(options)
    return watch


class Watch:
    """The connections of one endpoint that a timer looks at, and that timer's task."""

    __slots__ = ("_scope", "host", "members", "options", "stuck")

    def __init__(self, options: Options) -> None:
        self.options = options
        self.members: set[Connection] = set()
        self.host: Connection | None = None  # whose task group the watch's task runs in
        self.stuck: dict[Connection, tuple[int, float]] = {}  # sends in progress at a look
        self._scope: anyio.CancelScope | None = None

    def join(self, connection: Connection) -> None:
        """Looks at ``connection`` from the next look on (its handler runs)."""
        if connection.client_code is not None or not connection.handler_running:
            return
        connection.seen = -1  # the first look sees progress: away takes a whole interval
        connection.parked = 0
        self.members.add(connection)
        if self.host is None:
            self._move()

    def leave(self, connection: Connection) -> None:
        """``connection`` ends: stop looking at it, and move the task if it is the host."""
        connection.parked = -1
        self.members.discard(connection)
        self.stuck.pop(connection, None)
        if self.host is connection and self._scope is not None:
            self._scope.cancel()  # the task's finally moves it

    def _move(self) -> None:
        """Starts the task in the group of a connection that can host it, if there is one."""
        for candidate in self.members:
            group = candidate.group
            if group is not None and not candidate.unfit_host and not candidate.closing:
                self.host, self._scope = candidate, anyio.CancelScope()
                try:
                    group.start_soon(self._run, candidate, self._scope)
                except RuntimeError:  # its group closed already
                    candidate.unfit_host = True
                    continue
                return
        self.host = self._scope = None

    async def _run(self, host: Connection, scope: anyio.CancelScope) -> None:
        interval = self.options.watch_interval
        try:
            with scope:
                while self.members:
                    await anyio.sleep(interval)
                    self._look()
        finally:
            if self.host is host:
                if self.members:
                    # Cancelled: the host ends (its group is cancelled, or it left). It hosts
                    # no more, so a shutdown cancelling every group moves the task at most
                    # once per connection.
                    host.unfit_host = True
                    self._move()
                else:
                    self.host = self._scope = None

    def _look(self) -> None:
        done: list[Connection] = []
        stuck = self.stuck
        now = anyio.current_time()
        for connection in self.members:
            if connection.client_code is not None or not connection.handler_running:
                done.append(connection)  # its end is under way: the send task carries it out
                continue
            if connection.sending:
                self._check_send(connection, now)
            elif stuck:
                stuck.pop(connection, None)
            if connection.receive_task_runs:
                continue  # its receive task reads for the handler
            reads = connection.reads
            if connection.direct_reading:
                if connection.sending:
                    pass  # a helper (the merge's pump) reads while the handler sends: stay
                elif reads != connection.seen:
                    connection.parked = 0
                else:
                    connection.parked += 1
                    if connection.parked >= _LINGER:
                        done.append(connection)  # rejoins when that read returns
            elif reads == connection.seen:
                connection.start_reading()  # away a whole interval: read on its behalf
            connection.seen = reads
        for connection in done:
            connection.parked = -1
            self.members.discard(connection)
            stuck.pop(connection, None)

    def _check_send(self, connection: Connection, now: float) -> None:
        """A send that has not finished for ``send_timeout`` (the client reads nothing) is
        cancelled, and the client counts as gone. A counter of sends, not a timer per send,
        so the hot path pays one increment."""
        seen = self.stuck.get(connection)
        if seen is None or seen[0] != connection.sends:
            self.stuck[connection] = (connection.sends, now)
        elif now - seen[1] >= self.options.send_timeout:
            connection.stop()
