"""The per-endpoint websocket limits without I/O (``_ws_limits``, issue 14): the rate limit's
token bucket and the idle count, driven by a fake clock, and the per-app seats."""

from __future__ import annotations

import pytest

from shallot._ws_limits import Meter, Seats, idle_reason, slow_reason


class Clock:
    """A clock a test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_at_once_and_the_next_message_is_over_the_rate() -> None:
    clock = Clock()
    meter = Meter(now=0.0, clock=clock, max_rate=10.0, max_burst=3)
    assert [meter.admit() for _ in range(3)] == [True, True, True]
    assert not meter.admit()


def test_tokens_come_back_at_the_rate_up_to_the_burst() -> None:
    clock = Clock()
    meter = Meter(now=0.0, clock=clock, max_rate=10.0, max_burst=2)
    assert meter.admit()
    clock.now = 0.1  # one token back: two in all
    assert [meter.admit() for _ in range(2)] == [True, True]
    clock.now = 0.15  # half a token
    assert not meter.admit()


def test_never_more_tokens_than_the_burst() -> None:
    clock = Clock()
    meter = Meter(now=0.0, clock=clock, max_rate=10.0, max_burst=2)
    clock.now = 100.0
    assert [meter.admit() for _ in range(3)] == [True, True, False]


def test_once_over_the_rate_every_later_message_is_too() -> None:
    clock = Clock()
    meter = Meter(now=0.0, clock=clock, max_rate=10.0, max_burst=1)
    assert meter.admit()
    assert not meter.admit()
    clock.now = 100.0  # the close is on its way: no message after it slips through
    assert not meter.admit()


@pytest.mark.parametrize("rate", [1.0, 50.0, 1000.0])
def test_a_client_that_keeps_to_the_rate_is_never_refused(rate: float) -> None:
    clock = Clock()
    meter = Meter(now=0.0, clock=clock, max_rate=rate, max_burst=1)
    for number in range(1, 2001):
        clock.now = number / rate
        assert meter.admit(), number


def test_without_a_rate_every_message_is_admitted_and_counted() -> None:
    meter = Meter(now=0.0, clock=Clock(), idle_timeout=5.0)
    assert all(meter.admit() for _ in range(1000))
    assert meter.heard == 1000


def test_idle_is_measured_from_the_first_look_that_saw_nothing_new() -> None:
    meter = Meter(now=0.0, clock=Clock(), idle_timeout=1.0)
    assert not meter.idle(0.5)  # the first look, after the handshake: quiet from here
    assert not meter.idle(1.4)
    assert meter.idle(1.5)
    meter.admit()
    assert not meter.idle(1.1)  # a message came since the last look: quiet from now on
    assert not meter.idle(2.0)
    assert meter.idle(2.1)


def test_a_client_that_sends_within_the_idle_timeout_is_never_idle() -> None:
    meter = Meter(now=0.0, clock=Clock(), idle_timeout=1.0)
    looks = [number / 10 for number in range(1, 101)]
    for look in looks:
        if round(look * 10) % 9 == 0:  # a heartbeat every 0.9 s
            meter.admit()
        assert not meter.idle(look), look


def test_a_client_held_back_by_a_slow_handler_is_not_idle() -> None:
    meter = Meter(now=0.0, clock=Clock(), idle_timeout=1.0)
    assert not meter.idle(5.0, behind=True)  # messages wait for the handler
    assert not meter.idle(5.9)
    assert meter.idle(6.0)


def test_no_idle_timeout_is_never_idle() -> None:
    meter = Meter(now=0.0, clock=Clock(), max_rate=1.0)
    assert not meter.idle(1e9)


def test_the_reasons_fit_a_close_frame() -> None:
    assert idle_reason(30) == "idle: nothing received for 30s"
    assert idle_reason(0.5) == "idle: nothing received for 0.5s"
    assert slow_reason(10.0) == "too slow: a send took over 10s"
    assert len(idle_reason(1e300).encode()) <= 123


def test_seats_are_counted_per_endpoint_and_given_back() -> None:
    seats = Seats()
    chat, feed = object(), object()
    assert seats.take(chat, 2)
    assert seats.take(chat, 2)
    assert not seats.take(chat, 2)
    assert seats.take(feed, 2)  # another endpoint has seats of its own
    seats.give_back(chat)
    assert seats.taken(chat) == 1
    assert seats.take(chat, 2)
    for _ in range(2):
        seats.give_back(chat)
    assert seats.taken(chat) == 0
    seats.give_back(chat)  # never below zero
    assert seats.taken(chat) == 0


def test_two_apps_count_apart() -> None:
    endpoint = object()
    first, second = Seats(), Seats()
    assert first.take(endpoint, 1)
    assert second.take(endpoint, 1)
    assert not first.take(endpoint, 1)
