"""The rules of one websocket connection, pure: no anyio, no ``await``, no I/O (SPEC §4).

Like h11's ``Connection`` and wsproto's ``WSConnection``, ``WSState`` is driven by events and
answers with decisions; the runner (``_taskgroup``) feeds it and carries the decisions out, and
is its only writer. It can be driven from a plain test without an event loop.

Events in: ``received(message)``, ``offer(payload, now)``/``take()`` (the inbound buffer),
``handler_yielded(item)`` (which starts the send of what it returns), ``send_finished()``,
``peer_closed(code, reason)``, ``handler_ended(failed)``, ``look(now)``. Decisions out: the
payload to hand over or what to do instead (``CLOSE``, ``PEER_LEFT``, ``IGNORE``), whether a
message is queued, dropped or must wait (``QUEUED``, ``DROPPED``, ``WAIT``), what a look finds
(``KEEP``, ``READ_FOR_HANDLER``, ``STOP_SEND``, ``LEAVE``), the close to send
(``final_close()``) and the hooks to run (``hooks_due()``, decided once), and the close after
the group (``parting_close()``). A new rule is one more event or one more answer of ``look``:
the idle timeout is an answer of ``look`` (``CLOSE``, 1001), the rate limit one of
``received`` (``CLOSE``, 1008), both counted by a ``Meter`` (``_ws_limits``) that exists only
when the endpoint sets them.

Phases: HANDSHAKE until ``opened()``; OPEN; CLOSING once the end is decided (the client left,
the handler ended, a close was requested); CLOSED once ``finished()``.

Who reads ASGI ``receive``: the handler directly (``direct_reading``), or the receive task
(``task_reading``), never both; the handler reads directly only when ``may_read_directly()``
(nothing buffered, the task holds nothing), so order holds.

The hot path reads the state rather than calling it, because a Python call per rule cost 12 %
of a message in process (benchmarks/README.md): ``calm`` sums up in one field whether the
handler may read directly and a text may pass with no check but its shape (kept by
``settle()``, which every writer of its six fields calls). The receiver reads it in place of
``may_read_directly()`` and ``received``'s first case, the runner in place of
``handler_yielded``'s first case (a ``ws_send(str)`` dict), and it clears ``sending`` in place
of ``send_finished()``. These methods stay the rules' definitions: every other case calls them,
and the tests drive them.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any

from ._types import Message
from ._ws_limits import RATE_EXCEEDED, Limits, idle_reason, slow_reason
from ._ws_messages import (
    ABNORMAL,
    GOING_AWAY,
    INTERNAL_ERROR,
    MESSAGE_TOO_BIG,
    NORMAL,
    POLICY_VIOLATION,
    incoming,
    outgoing,
    size_of,
)

HANDSHAKE, OPEN, CLOSING, CLOSED = "handshake", "open", "closing", "closed"

#: ``received``: the message carried nothing for the handler / a close was decided (the runner
#: starts the send task) / the client left (the runner stops a send to nobody, ends).
IGNORE, CLOSE, PEER_LEFT = 0, 1, 2
#: ``offer``: the message was queued / dropped (pure push) / must wait for room.
QUEUED, DROPPED, WAIT = 3, 4, 5
#: ``look``: nothing to do / start the receive task / cancel a stalled send / leave the watch.
KEEP, READ_FOR_HANDLER, STOP_SEND, LEAVE = 6, 7, 8, 9

#: Looks a handler may sit in one direct read before its connection leaves the watch.
LINGER = 4

#: The reason of the 1001 sent when the server shuts down.
_SHUTTING_DOWN = "server shutting down"

#: Close codes a peer reports but that never go on the wire (RFC 6455 §7.4.1).
_NOT_SENDABLE = (1005, 1006, 1015)


def _close(code: int, reason: str = "") -> Message:
    return {"type": "websocket.close", "code": code, "reason": reason}


class _Flag:
    """A boolean kept as one bit of ``flags``: rarely read, so one slot holds them all (an idle
    connection's memory is mostly its objects and frames)."""

    __slots__ = ("bit",)

    def __init__(self, bit: int) -> None:
        self.bit = bit

    def __get__(self, state: WSState, owner: type | None = None) -> bool:
        return bool(state.flags & self.bit)

    def __set__(self, state: WSState, value: bool) -> None:
        state.flags = state.flags | self.bit if value else state.flags & ~self.bit


class WSState:
    """The state of one websocket connection and the rules that change it."""

    client_initiated = _Flag(1)  # the client left while the handler ran (on_disconnect runs)
    handler_failed = _Flag(2)  # the close is 1011
    grace_over = _Flag(4)  # the handler's cleanup may not wait any more
    close_sent = _Flag(8)
    hooks_decided = _Flag(16)
    is_open = _Flag(32)
    is_finished = _Flag(64)
    stalled = _Flag(128)  # a send stalled send_timeout: the client is told 1008 if it can be

    __slots__ = (
        "calm",
        "client_code",
        "client_reason",
        "close_request",
        "closing",
        "direct_reading",
        "dropped",
        "flags",
        "handler_close",
        "handler_running",
        "handler_waiting",
        "limits",
        "meter",
        "opened_at",
        "parked",
        "queue",
        "queued_bytes",
        "reads",
        "receive_task_runs",
        "seen",
        "sending",
        "sends",
        "server_closed",
        "stuck",
        "task_reading",
    )

    def __init__(
        self, limits: Limits, now: float, clock: Callable[[], float] | None = None
    ) -> None:
        self.limits = limits
        self.opened_at = now
        # None unless an inbound limit is set; ``clock`` tells a rate limit the time.
        self.meter = limits.meter(now, clock or (lambda: now))
        self.flags = 0
        self.client_code: int | None = None  # set when the client's disconnect arrived
        self.client_reason = ""
        self.handler_running = True
        self.handler_close: Message | None = None  # the close the handler yielded
        self.close_request: Message | None = None  # a close decided on the receiving side
        self.server_closed = False  # the close is decided: nothing more is sent
        self.closing = False  # the end is decided: the send task runs
        self.receive_task_runs = False
        self.direct_reading = False  # the handler is inside ASGI receive()
        self.task_reading = False  # the receive task holds a message or is inside receive()
        self.handler_waiting = False  # the handler waits for what the receive task queues
        self.reads = 0  # messages the handler took, directly or from the queue
        self.sending = False  # the handler is inside ASGI send()
        self.sends = 0  # sends begun, for the check of stalled sends
        self.stuck: tuple[int, float] | None = None  # (sends, when) of a send in progress
        self.seen = -1  # reads at the last look
        # looks the same direct read has lasted; -1: it left the watch (the hot path, not calm
        # then, takes the slower way, which rejoins)
        self.parked = 0
        self.queue: deque[str | bytes] | None = None  # made when the handler is first away
        self.queued_bytes = 0
        self.dropped = 0
        self.calm = True  # see settle()

    # -- phases ------------------------------------------------------------------------------

    @property
    def phase(self) -> str:
        """HANDSHAKE, OPEN, CLOSING or CLOSED."""
        if self.is_finished:
            return CLOSED
        if self.closing or self.client_code is not None:
            return CLOSING
        return OPEN if self.is_open else HANDSHAKE

    def opened(self) -> None:
        """The handshake succeeded."""
        self.is_open = True

    def finished(self) -> None:
        """The connection is over: nothing more is read or sent."""
        self.is_finished = True
        self.server_closed = True
        self.handler_running = False
        self.settle()

    def settle(self) -> None:
        """Sums up in ``calm`` whether the hot path may run: the handler may read ASGI receive
        directly (``may_read_directly``), and a text it receives or yields needs no check but
        its shape, for the client is there, no close is decided and the handler runs; and the
        connection is in its watch, so there is nothing to rejoin. Every writer of those fields
        calls this, so the hot path reads one field, not six."""
        self.calm = (
            self.client_code is None
            and not self.server_closed
            and self.handler_running
            and not self.queue
            and not self.task_reading
            and self.parked >= 0
        )

    def joined_watch(self) -> None:
        """The watch looks at the connection from its next look on."""
        self.seen = -1  # the first look sees progress: away takes a whole interval
        self.parked = 0
        self.settle()

    def left_watch(self) -> None:
        """The watch looks no more (``LEAVE``, or the end): not calm until it rejoins."""
        self.parked = -1
        self.calm = False

    def task_reads(self, reading: bool) -> None:
        """The receive task starts holding a message (or reading) for the handler, or stops."""
        self.task_reading = reading
        self.settle()

    # -- what the client sends -----------------------------------------------------------------

    def may_read_directly(self) -> bool:
        """Whether the handler may call ASGI receive itself: nothing is queued or held by the
        receive task, and the client has not left (else it would overtake them)."""
        return self.client_code is None and not self.queue and not self.task_reading

    def received(self, message: Message) -> str | bytes | int:
        """A message came from ASGI receive; returns its payload for the handler, or IGNORE,
        CLOSE (a message was too big: 1009) or PEER_LEFT."""
        kind = message["type"]
        if kind == "websocket.receive":
            payload = message.get("text")
            if type(payload) is not str or len(payload) > self.limits.text_limit:
                payload = incoming(message)  # bytes, or a text that may be too big: measure it
                if size_of(payload) > self.limits.max_message_size:
                    too_big = self.request_close(MESSAGE_TOO_BIG, "message too big")
                    return CLOSE if too_big else IGNORE
            if self.server_closed or not self.handler_running:
                return IGNORE
            if self.meter is not None and not self.meter.admit():
                over = self.request_close(POLICY_VIOLATION, RATE_EXCEEDED)
                return CLOSE if over else IGNORE
            return payload
        if kind == "websocket.disconnect":
            code, reason = message.get("code") or 1005, message.get("reason") or ""
            return self.peer_closed(int(code), str(reason))
        return IGNORE

    def peer_closed(self, code: int, reason: str = "") -> int:
        """The client left (or the server says it has); returns PEER_LEFT."""
        if self.client_code is None:
            self.client_code, self.client_reason = code, reason
            if self.handler_running and not self.server_closed:
                self.client_initiated = True
            self.calm = False
        return PEER_LEFT

    def request_close(self, code: int, reason: str) -> bool:
        """Decides a server-side close with ``code``; returns whether it is new (no close was
        on its way)."""
        if self.close_request is not None or self.closing or self.client_code is not None:
            return False
        self.close_request = _close(code, reason)
        # From here nothing more is handed to the handler or sent for it: the close is on its
        # way, and a message after a 1009 must not be answered as if nothing had happened.
        self.server_closed = True
        self.calm = False
        return True

    def offer(self, payload: str | bytes, now: float) -> int:
        """The receive task holds ``payload`` for the handler; returns QUEUED, DROPPED (a
        pure-push handler's full buffer, or a handler that ended) or WAIT (no room yet: the
        client is held back until the handler takes one, or until ``room_deadline``)."""
        queue = self.queue
        if queue is None:
            queue = self.queue = deque()
        size = size_of(payload)
        limits = self.limits
        if not self.handler_running:
            return DROPPED  # nobody will read it
        if len(queue) >= limits.max_queue or (
            queue and self.queued_bytes + size > limits.max_queue_bytes
        ):
            if self.handler_reads() or now < self.room_deadline():
                return WAIT
            self.dropped += 1
            return DROPPED
        queue.append(payload)
        self.calm = False
        self.queued_bytes += size
        return QUEUED

    def handler_reads(self) -> bool:
        """Whether the handler has read (or waits to read) since the connection opened: a full
        buffer then holds the client back rather than dropping."""
        return self.handler_running and (self.reads > 0 or self.handler_waiting)

    def room_deadline(self) -> float:
        """When a handler that has not read yet counts as pure push (``push_only_after``)."""
        return self.opened_at + self.limits.push_only_after

    def take(self) -> str | bytes | None:
        """Hands the oldest queued message to the handler, or None when none is queued."""
        queue = self.queue
        if not queue:
            return None
        payload = queue.popleft()
        if not queue:
            self.settle()
        self.queued_bytes -= size_of(payload)
        self.reads += 1
        return payload

    # -- what the handler sends ------------------------------------------------------------------

    def handler_yielded(self, item: Any) -> Message | None:
        """Returns the message to send for what the handler yielded, its send then counting as
        started, or None when the handler must stop (it yielded a close, which ``final_close``
        sends, or the end is decided).

        Raises:
            TypeError, ValueError: what it yielded is not a message that may be sent.
        """
        if not (
            type(item) is dict
            and len(item) == 2
            and type(item.get("text")) is str
            and item["type"] == "websocket.send"
        ):  # else the ws_send(str) shape: nothing to check
            item = outgoing(item)
            if item["type"] == "websocket.close":
                if self.client_code is None and not self.server_closed:
                    self.handler_close = item
                return None
        if self.client_code is not None or self.server_closed:
            return None
        self.sending = True
        self.sends += 1
        return item  # type: ignore[no-any-return]

    def send_finished(self) -> None:
        self.sending = False

    def send_failed(self) -> None:
        """The server says the client has gone (ASGI 2.4: ``OSError`` from send)."""
        if self.client_code is None:
            self.client_code = ABNORMAL
            self.calm = False

    def send_stalled(self) -> None:
        """A send was cut short after ``send_timeout``: the client counts as gone (the
        handler sees 1006), and is told why if the socket still lets a close out."""
        if self.client_code is None:
            self.stalled = True
        self.send_failed()

    def cancel_close(self) -> bool:
        """The server cancels the connection (shutdown); returns whether a 1001 close should
        still be sent (none was, and the client is there)."""
        if self.close_sent or self.client_code is not None:
            return False
        self.server_closed = self.close_sent = True
        self.calm = False
        return True

    def parting_close(self, cancelled: bool) -> Message | None:
        """Returns the close to send once the connection's group has ended, or None: 1008
        after a stalled send (rather than the server's 1011, issue 13), 1001 when the server
        cancelled the connection (``cancel_close``)."""
        if self.stalled and not self.close_sent:
            self.stalled = False
            self.server_closed = self.close_sent = True
            self.calm = False
            return _close(POLICY_VIOLATION, slow_reason(self.limits.send_timeout))
        if cancelled and self.cancel_close():
            return _close(GOING_AWAY, _SHUTTING_DOWN)
        return None

    def handler_ended(self, failed: bool = False) -> None:
        """The handler's generator is over (``failed``: it raised)."""
        if failed:
            self.handler_failed = True
        self.handler_running = False
        self.calm = False
        self.parked = -1
        if self.queue:
            self.queue.clear()
            self.queued_bytes = 0

    def end_decided(self) -> bool:
        """Whether the send task should start now; marks the phase CLOSING."""
        if self.closing:
            return False
        self.closing = True
        return True

    def final_close(self) -> Message | None:
        """Returns the close to send once the handler ended or a close was requested, or None
        (the client left first, or the handler still runs and nothing was requested). Its code
        may always go on the wire: never 1005, 1006 or 1015."""
        if self.client_code is not None:
            return None
        final = self.handler_close or self.close_request
        if final is None and not self.handler_running:
            final = _close(INTERNAL_ERROR if self.handler_failed else NORMAL)
        if final is not None:
            self.server_closed = True
            self.calm = False
        return final

    def disconnect_cause(self) -> tuple[int, str]:
        """The code and reason a ``WSDisconnect`` carries: those of the close the server
        decided (1001 at shutdown or when idle, 1009, 1008), which the client's close only
        answers (hypercorn reports it as 1000); else the client's; else 1006, for a client
        that vanished."""
        request = self.close_request
        if request is not None:
            return request["code"], request["reason"]
        if self.client_code is not None:
            return self.client_code, self.client_reason
        return ABNORMAL, ""

    def hooks_due(self) -> tuple[bool, bool]:
        """Returns (on_disconnect, on_close): whether each runs. Decided once: later calls
        return (False, False)."""
        if self.hooks_decided or not self.is_open:
            return False, False
        self.hooks_decided = True
        return self.client_initiated, True

    # -- the watch's look -------------------------------------------------------------------

    def look(self, now: float) -> int:
        """Looks at the connection once per watch interval; returns KEEP, READ_FOR_HANDLER (the
        handler has been away a whole interval), STOP_SEND (a send has not finished for
        ``send_timeout``: the client counts as gone) or LEAVE (the end is under way, the
        handler sits in one read for LINGER looks, or the receive task reads for a handler
        that is not sending: it rejoins when that read returns, at its next send, or as the
        task stops)."""
        if self.client_code is not None or not self.handler_running:
            return LEAVE
        meter = self.meter
        if meter is not None and meter.idle(now, behind=bool(self.queue)):
            reason = idle_reason(self.limits.idle_timeout or 0.0)
            if self.request_close(GOING_AWAY, reason):
                return CLOSE
        decision = KEEP
        if self.sending:
            stuck = self.stuck
            if stuck is None or stuck[0] != self.sends:
                self.stuck = (self.sends, now)
            elif now - stuck[1] >= self.limits.send_timeout:
                decision = STOP_SEND
                self.stuck = (self.sends, math.inf)  # decided once for this send
        else:
            self.stuck = None
        if decision == STOP_SEND:
            return decision
        if self.receive_task_runs:  # it reads for the handler: nothing to see but a send
            if not self.sending and (meter is None or meter.idle_timeout is None):
                return LEAVE  # it rejoins at the handler's next send, or as the task stops
            return decision
        reads = self.reads
        if self.direct_reading:
            if self.sending:
                pass  # a helper (the merge's pump) reads while the handler sends: stay
            elif reads != self.seen:
                self.parked = 0
            else:
                self.parked += 1
                if self.parked >= LINGER and (meter is None or meter.idle_timeout is None):
                    decision = LEAVE  # an idle timeout needs the looks: it stays
        elif reads == self.seen:
            decision = READ_FOR_HANDLER
        self.seen = reads
        return decision

    def next_look(self, now: float) -> float:
        """When to look again (``math.inf``: only when something changes)."""
        if self.client_code is not None or not self.handler_running:
            return math.inf
        return now + self.limits.watch_interval
