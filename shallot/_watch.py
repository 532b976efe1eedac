"""The watch: one timer that looks at many websocket connections, not one timer per connection.

Once per ``watch_interval`` the watch asks each connection it holds what it sees
(``WSState.look``) and has the connection carry it out (``act``): a handler away from its
receiver a whole interval gets a receive task, a send stalled for ``send_timeout`` is cut short,
a connection whose end is under way or whose handler sits in one read for ``LINGER`` looks leaves
(it rejoins when that read returns), so idle connections cost the watch nothing.

Who owns the timer's task: the app. ``AppWatches`` (one per built app, in ``AppState``) keeps a
watch per interval and runs its task in the app's lifespan task group, so it never moves between
connections and two apps never share one. Where the server runs no lifespan there is no such
group: each connection then gets a watch of its own whose task runs in the connection's own group
(``Watch(interval, None)``), which is as correct and costs a timer per busy connection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import anyio

from ._ws_state import KEEP

#: Starts a task: a task group's ``start_soon``.
Spawn = Callable[..., Any]


#: The members of a watch that holds none: shared, never added to (idle connections' memory).
_NONE: set[Any] = set()


class Watched(Protocol):
    """What the watch needs of a connection (``_taskgroup.Connection``)."""

    parked: int

    def look(self, now: float) -> int: ...

    def joined_watch(self) -> None: ...

    def left_watch(self) -> None: ...

    def act(self, decision: int) -> None: ...

    def spawn(self) -> Spawn | None: ...


class Watch:
    """The connections one timer looks at, and that timer's task (running while it holds any)."""

    __slots__ = ("_spawn", "interval", "members", "running")

    def __init__(self, interval: float, spawn: Spawn | None) -> None:
        self.interval = interval
        self._spawn = spawn  # None: each member's own group hosts the task (no lifespan)
        self.members: set[Watched] = _NONE  # a set of its own once one joins
        self.running = False

    def join(self, connection: Watched) -> None:
        """Looks at ``connection`` from the next look on (its handler runs)."""
        connection.joined_watch()
        if self.members is _NONE:
            self.members = set()
        self.members.add(connection)
        if not self.running:
            for spawn in (self._spawn, connection.spawn()):
                if spawn is None:
                    continue
                try:
                    spawn(self._run)
                except RuntimeError:  # the lifespan group has ended (shutdown)
                    self._spawn = None
                    continue
                self.running = True
                return

    def leave(self, connection: Watched) -> None:
        """Stops looking at ``connection``."""
        connection.left_watch()
        self.members.discard(connection)

    async def _run(self) -> None:
        try:
            while self.members:
                await anyio.sleep(self.interval)
                self._look()
        finally:
            self.running = False

    def _look(self) -> None:
        now = anyio.current_time()
        leaving: list[Watched] = []
        for connection in self.members:
            decision = connection.look(now)
            if decision != KEEP:
                connection.act(decision)
                if connection.parked < 0:
                    leaving.append(connection)
        for connection in leaving:
            self.members.discard(connection)
        if not self.members:  # an idle connection's own watch then holds no set
            self.members = _NONE


class AppWatches:
    """The watches of one app, one per watch interval, their tasks in the app's lifespan task
    group once it runs (``start``); before that, and without a lifespan, each connection
    watches itself."""

    __slots__ = ("_spawn", "_watches")

    def __init__(self) -> None:
        self._spawn: Spawn | None = None
        self._watches: dict[float, Watch] = {}

    def start(self, spawn: Spawn) -> None:
        """The lifespan task group runs: watches made from now on run their tasks there."""
        self._spawn = spawn

    def stop(self) -> None:
        """The lifespan task group ends: connections from now on watch themselves."""
        self._spawn = None
        self._watches.clear()

    def watch_for(self, interval: float) -> Watch:
        """Returns the app's watch for ``interval``, or a connection's own one (no lifespan)."""
        if self._spawn is None:
            return Watch(interval, None)
        watch = self._watches.get(interval)
        if watch is None:
            watch = self._watches[interval] = Watch(interval, self._spawn)
        return watch
