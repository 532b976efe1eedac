"""The websocket state machine without I/O: plain sync tests of each SPEC §4 rule, and random
event sequences checked against its invariants (``_ws_state``)."""

from __future__ import annotations

from collections import deque
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from shallot._ws_limits import Limits
from shallot._ws_state import (
    CLOSE,
    CLOSED,
    CLOSING,
    DROPPED,
    HANDSHAKE,
    IGNORE,
    KEEP,
    LEAVE,
    LINGER,
    OPEN,
    PEER_LEFT,
    QUEUED,
    READ_FOR_HANDLER,
    STOP_SEND,
    WAIT,
    WSState,
)


def limits(**overrides: Any) -> Limits:
    settings: dict[str, Any] = {
        "max_queue": 4,
        "max_queue_bytes": 100,
        "max_message_size": 50,
        "disconnect_timeout": 0.5,
        "close_timeout": 1.0,
        "send_timeout": 10.0,
        "watch_interval": 0.1,
        "push_only_after": 2.0,
    }
    settings.update(overrides)
    return Limits(**settings)


#: What a handler yields most: its send starts once ``handler_yielded`` returns it.
SEND = {"type": "websocket.send", "text": "x"}


def opened(clock: Any = None, **overrides: Any) -> WSState:
    state = WSState(limits(**overrides), now=0.0, clock=clock)
    state.opened()
    return state


def text(payload: str) -> dict[str, Any]:
    return {"type": "websocket.receive", "text": payload}


# -- phases ---------------------------------------------------------------------------------------


def test_phases_follow_the_connection() -> None:
    state = WSState(limits(), now=0.0)
    assert state.phase == HANDSHAKE
    state.opened()
    assert state.phase == OPEN
    assert state.received({"type": "websocket.disconnect", "code": 1001}) == PEER_LEFT
    assert state.phase == CLOSING
    state.finished()
    assert state.phase == CLOSED


def test_no_hooks_for_a_connection_that_never_opened() -> None:
    assert WSState(limits(), now=0.0).hooks_due() == (False, False)


# -- what the client sends ------------------------------------------------------------------------


def test_a_message_is_handed_over_as_its_payload() -> None:
    state = opened()
    assert state.received(text("hi")) == "hi"
    assert state.received({"type": "websocket.receive", "bytes": b"\x00"}) == b"\x00"


def test_a_message_over_max_message_size_closes_with_1009_once() -> None:
    state = opened(max_message_size=8)
    assert state.received({"type": "websocket.receive", "bytes": b"x" * 9}) == CLOSE
    assert state.received({"type": "websocket.receive", "bytes": b"x" * 9}) == IGNORE
    close = state.final_close()
    assert close is not None
    assert (close["code"], close["reason"]) == (1009, "message too big")


def test_after_a_close_is_requested_nothing_more_is_handed_over_or_sent() -> None:
    # The send task carries the 1009 out a moment later; meanwhile the hot path read on and
    # the handler answered messages that came after the one too big.
    state = opened(max_message_size=8)
    assert state.received({"type": "websocket.receive", "bytes": b"x" * 9}) == CLOSE
    assert not state.calm
    assert state.received(text("after")) == IGNORE
    assert state.handler_yielded({"type": "websocket.send", "text": "answer"}) is None
    # a handler stopped at its yield is told the close's code, not that the client vanished
    assert state.disconnect_cause() == (1009, "message too big")
    close = state.final_close()
    assert close is not None
    assert close["code"] == 1009
    # the client's answering close is not a client leaving: on_disconnect does not run, and
    # the handler is still told the server's close (hypercorn reports the answer as 1000)
    assert state.received({"type": "websocket.disconnect", "code": 1000}) == PEER_LEFT
    assert state.disconnect_cause() == (1009, "message too big")
    assert state.hooks_due() == (False, True)


def test_a_non_ascii_text_is_measured_in_utf8_bytes() -> None:
    state = opened(max_message_size=8)
    assert state.received(text("é" * 4)) == "é" * 4  # 8 bytes
    assert state.received(text("é" * 5)) == CLOSE  # 10 bytes


def test_the_clients_close_code_and_reason_reach_the_handler() -> None:
    state = opened()
    assert state.received({"type": "websocket.disconnect", "code": 4001, "reason": "bye"}) == (
        PEER_LEFT
    )
    assert (state.client_code, state.client_reason) == (4001, "bye")
    assert state.disconnect_cause() == (4001, "bye")
    assert state.hooks_due() == (True, True)


def test_a_disconnect_without_a_code_is_1005() -> None:
    state = opened()
    state.received({"type": "websocket.disconnect"})
    assert state.client_code == 1005


def test_calm_says_in_one_field_when_the_hot_path_may_run() -> None:
    state = opened()
    assert state.calm
    state.task_reads(True)
    assert not state.calm
    state.task_reads(False)
    assert state.offer("a", now=0.0) == QUEUED
    assert not state.calm
    assert state.take() == "a"
    assert state.calm
    assert state.request_close(1008, "no")  # the close is on its way: nothing more passes
    assert not state.calm


def test_a_reader_that_left_the_watch_is_not_calm_until_it_rejoins() -> None:
    # the hot path then takes the slower way, which rejoins the watch
    state = opened()
    state.direct_reading = True
    decisions = [state.look(n / 10) for n in range(1, 3 * LINGER)]
    assert LEAVE in decisions
    state.left_watch()
    assert not state.calm
    state.direct_reading = False
    state.joined_watch()
    assert state.calm


@pytest.mark.parametrize("end", ["peer", "send failed", "handler", "finished"])
def test_calm_ends_with_the_connection(end: str) -> None:
    state = opened()
    if end == "peer":
        state.received({"type": "websocket.disconnect", "code": 1000})
    elif end == "send failed":
        state.send_failed()
    elif end == "handler":
        state.handler_ended()
    else:
        state.finished()
    assert not state.calm


def test_the_handler_reads_directly_only_when_nothing_is_queued_or_in_hand() -> None:
    state = opened()
    assert state.may_read_directly()
    state.task_reads(True)
    assert not state.may_read_directly()
    state.task_reads(False)
    assert state.offer("a", now=0.0) == QUEUED
    assert not state.may_read_directly()
    assert state.take() == "a"
    assert state.may_read_directly()


# -- the inbound bound ----------------------------------------------------------------------------


def test_a_full_queue_holds_a_reading_client_back() -> None:
    state = opened(max_queue=2)
    state.reads = 1  # the handler has read: nothing may be dropped
    assert [state.offer(m, now=5.0) for m in "abc"] == [QUEUED, QUEUED, WAIT]
    assert state.take() == "a"
    assert state.offer("c", now=5.0) == QUEUED


def test_the_queue_is_bounded_in_bytes_but_lets_a_large_message_in_alone() -> None:
    state = opened(max_queue_bytes=10)
    state.reads = 1
    assert state.offer("x" * 30, now=0.0) == QUEUED  # alone: let in
    assert state.offer("y", now=0.0) == WAIT
    assert state.take() == "x" * 30
    assert state.offer("y" * 6, now=0.0) == QUEUED
    assert state.offer("z" * 6, now=0.0) == WAIT  # 12 bytes would be over 10


def test_a_handler_that_has_not_read_is_pure_push_after_push_only_after() -> None:
    state = opened(max_queue=1, push_only_after=2.0)
    assert state.offer("a", now=0.0) == QUEUED
    assert state.offer("b", now=1.0) == WAIT  # it may still start reading
    assert state.room_deadline() == 2.0
    assert state.offer("b", now=2.0) == DROPPED
    assert state.dropped == 1


def test_after_the_handler_ended_nothing_is_queued() -> None:
    state = opened()
    state.handler_ended()
    assert state.offer("a", now=0.0) == DROPPED
    assert state.received(text("b")) == IGNORE


# -- what the handler sends -----------------------------------------------------------------------


def test_a_yielded_message_is_checked_and_sent() -> None:
    state = opened()
    assert state.handler_yielded({"type": "websocket.send", "text": "hi"}) == {
        "type": "websocket.send",
        "text": "hi",
    }
    assert state.sending  # the runner sends what it returns: the send has started
    state.send_finished()
    assert state.handler_yielded({"type": "websocket.send", "bytes": bytearray(b"b")}) == {
        "type": "websocket.send",
        "bytes": b"b",
    }
    with pytest.raises(TypeError):
        state.handler_yielded("not a message")
    with pytest.raises(ValueError, match="may not be sent"):
        state.handler_yielded({"type": "websocket.close", "code": 1006})


def test_a_yielded_close_is_the_close_sent_and_ends_the_handler() -> None:
    state = opened()
    assert state.handler_yielded({"type": "websocket.close", "code": 4001}) is None
    state.handler_ended()
    assert state.final_close() == {"type": "websocket.close", "code": 4001, "reason": ""}
    assert state.hooks_due() == (False, True)


def test_nothing_is_sent_after_the_client_left() -> None:
    state = opened()
    state.peer_closed(1000)
    assert state.handler_yielded({"type": "websocket.send", "text": "late"}) is None
    state.handler_ended()
    assert state.final_close() is None  # the client closed: no close frame back


@pytest.mark.parametrize(("failed", "code"), [(False, 1000), (True, 1011)])
def test_a_handler_that_ends_closes_with_1000_or_1011(failed: bool, code: int) -> None:
    state = opened()
    state.handler_ended(failed=failed)
    close = state.final_close()
    assert close is not None
    assert close["code"] == code


def test_a_failed_send_counts_as_the_client_gone_without_on_disconnect() -> None:
    state = opened()
    state.handler_yielded(SEND)
    state.send_failed()
    assert state.client_code == 1006
    state.handler_ended()
    assert state.hooks_due() == (False, True)


def test_a_server_cancellation_sends_1001_once() -> None:
    state = opened()
    assert state.cancel_close()
    assert not state.cancel_close()


def test_hooks_are_decided_once() -> None:
    state = opened()
    state.peer_closed(1000)
    assert state.hooks_due() == (True, True)
    assert state.hooks_due() == (False, False)


# -- the watch's look -----------------------------------------------------------------------------


def test_a_handler_away_a_whole_interval_gets_the_receive_task() -> None:
    state = opened()
    assert state.look(0.1) == KEEP  # first look: progress since joining
    assert state.look(0.2) == READ_FOR_HANDLER
    state.receive_task_runs = True
    state.sending = True  # a send of the handler's is watched for a stall
    assert state.look(0.3) == KEEP
    state.sending = False  # else nothing is left to see until it sends or reads again
    assert state.look(0.4) == LEAVE


def test_a_receive_task_for_a_handler_under_an_idle_timeout_keeps_it_in_the_watch() -> None:
    state = opened(idle_timeout=10.0)
    state.receive_task_runs = True
    assert [state.look(n / 10) for n in range(1, 10)].count(LEAVE) == 0


def test_a_handler_that_reads_is_not_read_for() -> None:
    state = opened()
    for look in range(1, 5):
        state.reads += 1
        assert state.look(look / 10) == KEEP


def test_a_handler_sitting_in_one_read_leaves_the_watch_after_linger_looks() -> None:
    state = opened()
    state.direct_reading = True
    decisions = [state.look(n / 10) for n in range(1, LINGER + 2)]
    assert decisions[-1] == LEAVE
    assert set(decisions[:-1]) == {KEEP}


def test_a_send_stalled_for_send_timeout_is_stopped() -> None:
    state = opened(send_timeout=1.0)
    state.handler_yielded(SEND)
    assert state.look(0.0) == KEEP
    assert state.look(0.9) == READ_FOR_HANDLER  # away from its receiver, not stalled yet
    assert state.look(1.0) == STOP_SEND


def test_a_stalled_send_is_stopped_once() -> None:
    # a send the server will not let go stays stalled: the watch must not decide it again
    state = opened(send_timeout=1.0)
    state.direct_reading = True
    state.handler_yielded(SEND)
    decisions = [state.look(n * 0.5) for n in range(20)]
    assert decisions.count(STOP_SEND) == 1


def test_a_send_that_progresses_is_not_stopped() -> None:
    state = opened(send_timeout=1.0)
    for n in range(5):
        state.send_finished()
        state.handler_yielded(SEND)
        assert state.look(n * 0.6) != STOP_SEND


def test_a_sending_connection_whose_helper_reads_stays_watched() -> None:
    # issue 12, bug 2: a merge's pump sits in a read while the handler's send stalls
    state = opened(send_timeout=1.0)
    state.direct_reading = True
    state.handler_yielded(SEND)
    decisions = [state.look(n * 0.25) for n in range(LINGER + 2)]
    assert LEAVE not in decisions
    assert decisions.count(STOP_SEND) == 1


def test_an_ending_connection_leaves_the_watch() -> None:
    state = opened()
    state.peer_closed(1000)
    assert state.look(0.1) == LEAVE


# -- the limits of issue 14: idle timeout, rate limit; the slow client's close (issue 13) ----------


def test_without_limits_a_connection_has_no_meter() -> None:
    assert opened().meter is None  # no per-message work beyond that check
    assert opened(idle_timeout=1.0).meter is not None
    assert opened(max_rate=1.0).meter is not None


def test_a_silent_client_is_closed_with_1001_after_idle_timeout() -> None:
    state = opened(idle_timeout=1.0)
    state.direct_reading = True  # the handler waits in a read
    assert state.look(0.5) == KEEP  # the first look: quiet from here
    assert state.look(1.0) == KEEP
    assert state.look(1.5) == CLOSE
    assert state.final_close() == {
        "type": "websocket.close",
        "code": 1001,
        "reason": "idle: nothing received for 1s",
    }
    assert state.look(1.6) == KEEP  # decided once


def test_a_client_that_sends_is_not_idle() -> None:
    state = opened(idle_timeout=1.0)
    for look in range(1, 40):
        if look % 5 == 0:
            assert state.received(text("ping")) == "ping"
        assert state.look(look / 10) != CLOSE, look


def test_a_client_held_back_while_the_queue_is_full_is_not_idle() -> None:
    state = opened(idle_timeout=1.0, max_queue=1)
    assert state.received(text("a")) == "a"
    assert state.offer("a", 0.0) == QUEUED  # the handler is away; then the queue is full
    assert [state.look(n / 2) for n in range(1, 8)].count(CLOSE) == 0
    assert state.take() == "a"
    assert state.look(4.0) != CLOSE  # caught up at 3.5 at the latest: quiet from there
    assert state.look(4.5) == CLOSE


def test_an_idle_timeout_keeps_a_parked_reader_in_the_watch() -> None:
    # a handler sitting in one read would leave the watch, which must keep looking
    state = opened(idle_timeout=10.0)
    state.direct_reading = True
    decisions = [state.look(n / 10) for n in range(1, 3 * LINGER)]
    assert LEAVE not in decisions


def test_a_client_over_the_rate_is_closed_with_1008() -> None:
    now = [0.0]
    state = opened(clock=lambda: now[0], max_rate=2.0, max_burst=2)
    assert state.received(text("a")) == "a"
    assert state.received(text("b")) == "b"
    assert state.received(text("c")) == CLOSE  # over: not handed over
    now[0] = 10.0
    assert state.received(text("d")) == IGNORE  # nor anything after it
    assert state.final_close() == {
        "type": "websocket.close",
        "code": 1008,
        "reason": "rate limit exceeded",
    }


def test_a_client_within_the_rate_keeps_its_messages() -> None:
    now = [0.0]
    state = opened(clock=lambda: now[0], max_rate=10.0)  # burst: one second's worth
    assert [state.received(text(str(n))) for n in range(10)] == [str(n) for n in range(10)]
    for number in range(100):
        now[0] = 1.0 + number / 10
        assert state.received(text("x")) == "x"


def test_a_stalled_send_parts_with_1008_and_the_handler_sees_1006() -> None:
    state = opened(send_timeout=2.0)
    state.handler_yielded(SEND)
    state.send_stalled()
    assert state.disconnect_cause() == (1006, "")
    assert state.parting_close(cancelled=False) == {
        "type": "websocket.close",
        "code": 1008,
        "reason": "too slow: a send took over 2s",
    }
    assert state.parting_close(cancelled=True) is None  # one close at most


def test_a_stall_after_the_client_left_parts_with_nothing() -> None:
    state = opened()
    state.peer_closed(1000)
    state.send_stalled()
    assert state.parting_close(cancelled=False) is None


def test_a_cancelled_connection_parts_with_1001() -> None:
    state = opened()
    close = state.parting_close(cancelled=True)
    assert close is not None
    assert (close["code"], close["reason"]) == (1001, "server shutting down")
    assert state.parting_close(cancelled=True) is None


# -- random event sequences -----------------------------------------------------------------------

SENDABLE = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}


class ConnectionMachine(RuleBasedStateMachine):
    """Drives a WSState as the runner would, in random orders, and checks its invariants."""

    def __init__(self) -> None:
        super().__init__()
        self.state = opened(max_queue=3, max_queue_bytes=12, push_only_after=1.0)
        self.now = 0.0
        self.sent: list[str] = []  # what the client sent, in order
        self.delivered: list[str] = []  # what the handler got
        self.in_hand: str | None = None  # the receive task holds it (WAIT)
        self.closes: list[Any] = []
        self.hook_decisions = 0
        self.number = 0

    def _next(self, size: int) -> str:
        self.number += 1
        return f"{self.number:0{size}d}"

    @rule(dt=st.floats(min_value=0, max_value=0.5))
    def time_passes(self, dt: float) -> None:
        self.now += dt

    @precondition(lambda self: self.state.may_read_directly() and self.state.handler_running)
    @rule(size=st.integers(min_value=1, max_value=8))
    def handler_reads_directly(self, size: int) -> None:
        message = self._next(size)
        self.sent.append(message)
        result = self.state.received({"type": "websocket.receive", "text": message})
        self.state.reads += 1
        if isinstance(result, str):
            self.delivered.append(result)

    @precondition(
        lambda self: (
            self.state.client_code is None
            and self.in_hand is None
            and not self.state.direct_reading
        )
    )
    @rule(size=st.integers(min_value=1, max_value=8))
    def receive_task_reads(self, size: int) -> None:
        message = self._next(size)
        self.sent.append(message)
        result = self.state.received({"type": "websocket.receive", "text": message})
        if isinstance(result, str):
            self.in_hand = result
            self._offer()

    def _offer(self) -> None:
        assert self.in_hand is not None
        self.state.task_reads(True)
        decision = self.state.offer(self.in_hand, self.now)
        if decision == WAIT:
            return
        if decision == DROPPED:
            self.sent.remove(self.in_hand)  # dropped by policy: not owed to the handler
        self.in_hand = None
        self.state.task_reads(False)

    @precondition(lambda self: self.in_hand is not None)
    @rule()
    def receive_task_retries(self) -> None:
        self._offer()

    @precondition(lambda self: self.state.handler_running)
    @rule()
    def handler_takes(self) -> None:
        payload = self.state.take()
        if payload is not None:
            assert isinstance(payload, str)
            self.delivered.append(payload)

    @precondition(lambda self: self.state.handler_running)
    @rule(code=st.sampled_from([1000, 1001, 1005, 1006, 4000]))
    def peer_closes(self, code: int) -> None:
        assert self.state.peer_closed(code) == PEER_LEFT

    @precondition(lambda self: self.state.handler_running and not self.state.sending)
    @rule(close=st.booleans(), code=st.sampled_from([1000, 1011, 4001]))
    def handler_yields(self, close: bool, code: int) -> None:
        item: dict[str, Any] = (
            {"type": "websocket.close", "code": code}
            if close
            else {"type": "websocket.send", "text": "out"}
        )
        message = self.state.handler_yielded(item)
        assert self.state.sending == (message is not None)  # what it returns is being sent

    @precondition(lambda self: self.state.sending)
    @rule(failed=st.booleans())
    def send_ends(self, failed: bool) -> None:
        self.state.send_finished()
        if failed:
            self.state.send_failed()

    @precondition(lambda self: self.state.handler_running)
    @rule(failed=st.booleans())
    def handler_ends(self, failed: bool) -> None:
        self.state.send_finished()
        self.state.handler_ended(failed)
        self.in_hand = None
        self.state.task_reads(False)
        close = self.state.final_close()
        if close is not None:
            self.closes.append(close)

    @rule()
    def watch_looks(self) -> None:
        if self.state.look(self.now) == LEAVE:
            self.state.left_watch()

    @precondition(lambda self: self.state.parked < 0 and self.state.handler_running)
    @rule()
    def handler_rejoins_the_watch(self) -> None:
        self.state.joined_watch()

    @rule()
    def hooks(self) -> None:
        _, on_close = self.state.hooks_due()
        self.hook_decisions += on_close

    @invariant()
    def calm_sums_up_its_fields(self) -> None:
        state = self.state
        assert state.calm == (
            state.client_code is None
            and not state.server_closed
            and state.handler_running
            and not state.queue
            and not state.task_reading
            and state.parked >= 0
        )
        if state.calm:
            assert state.may_read_directly()

    @invariant()
    def at_most_one_reader(self) -> None:
        assert not (self.state.direct_reading and self.state.task_reading)

    @invariant()
    def delivered_in_order_and_once(self) -> None:
        assert self.delivered == self.sent[: len(self.delivered)]

    @invariant()
    def bounded(self) -> None:
        queue = self.state.queue or deque()
        limits = self.state.limits
        assert len(queue) <= limits.max_queue
        assert len(queue) <= 1 or self.state.queued_bytes <= limits.max_queue_bytes

    @invariant()
    def on_close_decided_at_most_once(self) -> None:
        assert self.hook_decisions <= 1

    @invariant()
    def closes_may_go_on_the_wire(self) -> None:
        for close in self.closes:
            assert close["code"] in SENDABLE or 3000 <= close["code"] <= 4999

    @invariant()
    def an_ended_handler_leads_to_a_close(self) -> None:
        if not self.state.handler_running:
            assert self.closes or self.state.client_code is not None


TestConnectionMachine = ConnectionMachine.TestCase


class LimitedConnectionMachine(ConnectionMachine):
    """The same, with a rate limit and an idle timeout read from the machine's own clock: the
    invariants hold with them, and their closes come at most once."""

    def __init__(self) -> None:
        super().__init__()
        self.state = opened(
            clock=lambda: self.now,
            max_queue=3,
            max_queue_bytes=12,
            push_only_after=1.0,
            max_rate=4.0,
            max_burst=2,
            idle_timeout=1.0,
        )

    @invariant()
    def one_close_request_at_most(self) -> None:
        request = self.state.close_request
        assert request is None or request["code"] in (1001, 1008)


TestLimitedConnectionMachine = LimitedConnectionMachine.TestCase
