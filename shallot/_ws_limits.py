"""The per-endpoint settings of ``@websocket`` (``Limits``) and the counting its limits need,
pure: no anyio, no I/O.

``Meter`` watches what one connection receives (issue 14, items 4 and 5): a token bucket for
``max_rate``/``max_burst``, asked once per message, and a count of messages that the watch's
look compares to notice ``idle_timeout`` (so an idle check costs nothing per message but one
increment). ``WSState`` owns a meter only when one of these limits is set; with all of them off
a message costs the check that there is none.

``Seats`` counts the open connections of each endpoint of one app, for ``max_connections``. It
lives in the app's state (``AppState.seats``), keyed by the endpoint object itself: two apps
serving the same handler count apart, and nothing is process-global.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

#: A whole token, less the rounding of ``elapsed * rate``: a client sending at exactly the rate
#: must never be refused.
_ONE_TOKEN = 1.0 - 1e-9

#: The reason of the close (1008) when a client sends faster than ``max_rate``.
RATE_EXCEEDED = "rate limit exceeded"


def idle_reason(idle_timeout: float) -> str:
    """The reason of the close (1001) when nothing came for ``idle_timeout`` seconds."""
    return f"idle: nothing received for {idle_timeout:g}s"


def slow_reason(send_timeout: float) -> str:
    """The reason of the close (1008) when a send to the client stalled ``send_timeout``."""
    return f"too slow: a send took over {send_timeout:g}s"


class Limits:
    """Per-endpoint websocket settings, validated once by ``@websocket``."""

    __slots__ = (
        "close_timeout",
        "disconnect_timeout",
        "idle_timeout",
        "max_burst",
        "max_connections",
        "max_message_size",
        "max_queue",
        "max_queue_bytes",
        "max_rate",
        "metered",
        "push_only_after",
        "send_timeout",
        "text_limit",
        "unmetered_text_limit",
        "watch_interval",
    )

    def __init__(
        self,
        *,
        max_queue: int,
        max_queue_bytes: int,
        max_message_size: int,
        disconnect_timeout: float,
        close_timeout: float,
        send_timeout: float,
        watch_interval: float = 0.1,
        push_only_after: float = 2.0,
        idle_timeout: float | None = None,
        max_connections: int | None = None,
        max_rate: float | None = None,
        max_burst: int | None = None,
    ) -> None:
        self.max_queue = max_queue
        self.max_queue_bytes = max_queue_bytes
        self.max_message_size = max_message_size
        # A text of at most this many characters is at most max_message_size bytes in UTF-8.
        self.text_limit = max_message_size // 4
        self.disconnect_timeout = disconnect_timeout
        self.close_timeout = close_timeout
        self.send_timeout = send_timeout
        self.watch_interval = watch_interval
        self.push_only_after = push_only_after
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.max_rate = max_rate
        # A burst of one second's worth by default, at least one message.
        self.max_burst = max_burst or (None if max_rate is None else max(1, math.ceil(max_rate)))
        self.metered = idle_timeout is not None or max_rate is not None  # a Meter per connection
        # The receiver's hot path hands over a text this long with no check: none when metered.
        self.unmetered_text_limit = -1 if self.metered else self.text_limit

    def meter(self, now: float, clock: Callable[[], float]) -> Meter | None:
        """Returns a connection's meter, or None when no inbound limit is set (issue 14)."""
        if not self.metered:
            return None
        return Meter(
            now=now,
            clock=clock,
            idle_timeout=self.idle_timeout,
            max_rate=self.max_rate,
            max_burst=self.max_burst or 1,
        )


class Meter:
    """What one connection received: the rate limit's bucket and the idle timeout's count."""

    __slots__ = (
        "burst",
        "clock",
        "heard",
        "idle_timeout",
        "quiet_since",
        "rate",
        "seen",
        "stamp",
        "tokens",
    )

    def __init__(
        self,
        *,
        now: float,
        clock: Callable[[], float],
        idle_timeout: float | None = None,
        max_rate: float | None = None,
        max_burst: float = 1.0,
    ) -> None:
        self.clock = clock  # read per message only when a rate is set
        self.rate = max_rate
        self.burst = float(max_burst)
        self.tokens = self.burst  # a new connection may send a whole burst at once
        self.stamp = now
        self.idle_timeout = idle_timeout
        self.heard = 0  # messages received
        # ``heard`` at the last look; none yet, so the silence counts from the first look,
        # after the handshake (a slow ``on_connect`` does not eat the client's time)
        self.seen = -1
        self.quiet_since = now  # the look that first saw no new message

    def admit(self) -> bool:
        """A message arrived; returns whether it is within ``max_rate`` (a token was left)."""
        self.heard += 1
        rate = self.rate
        if rate is None:
            return True
        if self.tokens < 0.0:
            return False  # over it once: the close is on its way, nothing more is handed over
        now = self.clock()
        tokens = min(self.burst, self.tokens + (now - self.stamp) * rate)
        self.stamp = now
        if tokens < _ONE_TOKEN:
            self.tokens = -1.0
            return False
        self.tokens = max(0.0, tokens - 1.0)  # below 0 means over: never from rounding
        return True

    def idle(self, now: float, behind: bool = False) -> bool:
        """Looks at the count once per watch interval; returns whether nothing arrived for
        ``idle_timeout`` seconds. Measured from the first look that saw no new message, so it
        is never early and at most about two watch intervals late. ``behind``: messages wait
        for the handler, so the server is not reading (backpressure), and the silence is not
        the client's."""
        if self.idle_timeout is None:
            return False
        if self.heard != self.seen or behind:
            self.seen = self.heard
            self.quiet_since = now
            return False
        return now - self.quiet_since >= self.idle_timeout


class Seats:
    """The open connections of each endpoint of one app, held against ``max_connections``."""

    __slots__ = ("_taken",)

    def __init__(self) -> None:
        self._taken: dict[Any, int] = {}

    def take(self, endpoint: Any, limit: int) -> bool:
        """Takes a seat for a new connection to ``endpoint``; returns False when all ``limit``
        are taken (the handshake is then refused)."""
        taken = self._taken.get(endpoint, 0)
        if taken >= limit:
            return False
        self._taken[endpoint] = taken + 1
        return True

    def give_back(self, endpoint: Any) -> None:
        """A connection to ``endpoint`` ended, however it ended."""
        left = self._taken.get(endpoint, 0) - 1
        if left > 0:
            self._taken[endpoint] = left
        else:
            self._taken.pop(endpoint, None)

    def taken(self, endpoint: Any) -> int:
        """How many connections to ``endpoint`` are open (or in their handshake)."""
        return self._taken.get(endpoint, 0)
