"""``shallot._sending``: the sends of a response, bounded by the response timeout, with a scope
entered only once a send waits (issue 13)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
import trio.testing
from hypercorn.asyncio.worker_context import WorkerContext as AsyncioContext
from hypercorn.protocol.http_stream import HTTPStream
from hypercorn.trio.worker_context import WorkerContext as TrioContext

from shallot import _sending
from shallot._sending import AS_IS, SCOPED, STEP, StallWatch, begin, plan, send_all_within
from shallot._types import Message


@pytest.fixture(params=["asyncio", "trio-autojump"])
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    if request.param == "asyncio":
        return "asyncio"
    return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})


@pytest.fixture
def limit(anyio_backend: Any) -> float:
    """The response timeout: tiny on asyncio, real on trio's autojump clock (free there)."""
    return 0.05 if anyio_backend == "asyncio" else 30.0


def assert_took_about(elapsed: float, limit: float) -> None:
    assert limit * 0.99 <= elapsed < limit * 2 + 0.5


class Client:
    """A server's side of one response: its ``send`` records what it sent, and waits for ever
    once the client has stopped reading (before message number ``stall_at``)."""

    def __init__(self, stall_at: int = 99, checkpoint: bool = False) -> None:
        self.sent: list[Message] = []
        self.stall_at = stall_at
        self.checkpoint = checkpoint  # suspends once per send, as trio's sends do

    async def send(self, message: Message) -> None:
        if self.checkpoint:
            await anyio.lowlevel.checkpoint()
        if len(self.sent) >= self.stall_at:
            await anyio.Event().wait()  # for ever, in no cancel scope (a sleep would open one)
        self.sent.append(message)


class ScopedClient(Client):
    """A ``send`` that opens a cancel scope of its own, around a wait (an ASGI middleware's)."""

    async def send(self, message: Message) -> None:
        with anyio.CancelScope():
            await super().send(message)


@pytest.fixture
def known() -> Iterator[None]:
    """Declares ``Client`` a server's own send, as hypercorn's is."""
    name = f"{Client.__module__}.{Client.__qualname__}"
    _sending.PLAIN_SENDERS.add(name)
    _sending._plans.clear()
    yield
    _sending.PLAIN_SENDERS.discard(name)
    _sending._plans.clear()


START: Message = {"type": "http.response.start", "status": 200, "headers": []}
BODY: Message = {"type": "http.response.body", "body": b"small", "more_body": False}


# --- begin: a coroutine stepped by hand ----------------------------------------------------------


def test_begin_returns_none_for_a_coroutine_that_never_waits() -> None:
    client = Client()
    assert begin(client.send(START)) is None
    assert client.sent == [START]


async def test_awaiting_what_begin_returns_finishes_the_coroutine_with_its_result() -> None:
    async def answer() -> int:
        await anyio.lowlevel.checkpoint()
        return 42

    suspended = begin(answer())
    assert suspended is not None
    with anyio.fail_after(1):
        assert await suspended == 42


async def test_a_cancellation_reaches_the_suspended_coroutine() -> None:
    ran: list[str] = []

    async def waits() -> None:
        await anyio.lowlevel.checkpoint()  # suspends: begin returns here
        try:
            await anyio.sleep_forever()
        finally:
            ran.append("finally")

    suspended = begin(waits())
    assert suspended is not None
    with anyio.move_on_after(1) as scope:
        await suspended
    assert scope.cancelled_caught
    assert ran == ["finally"]


# --- send_all_within ---------------------------------------------------------------------------


@pytest.mark.usefixtures("known")
@pytest.mark.parametrize("checkpoint", [False, True], ids=["never-waits", "checkpoints"])
async def test_sends_that_do_not_stall_are_all_sent(checkpoint: bool, limit: float) -> None:
    client = Client(checkpoint=checkpoint)
    with anyio.fail_after(limit * 2):
        sent = await send_all_within(client.send, (START, BODY), limit, plan(client.send, {}))
    assert sent
    assert client.sent == [START, BODY]


@pytest.mark.usefixtures("known")
@pytest.mark.parametrize("stall_at", [0, 1], ids=["start", "body"])
@pytest.mark.parametrize("checkpoint", [False, True], ids=["never-waits", "checkpoints"])
async def test_a_known_send_that_stalls_is_abandoned_after_the_timeout(
    stall_at: int, checkpoint: bool, limit: float
) -> None:
    client = Client(stall_at, checkpoint)
    assert plan(client.send, {}) == STEP
    started = anyio.current_time()
    with anyio.fail_after(limit * 2 + 1):
        sent = await send_all_within(client.send, (START, BODY), limit, STEP)
    assert not sent
    assert_took_about(anyio.current_time() - started, limit)
    assert client.sent == [START, BODY][:stall_at]


async def test_an_unknown_send_with_a_scope_of_its_own_gets_the_timeout_up_front(
    limit: float,
) -> None:
    client = ScopedClient(stall_at=1, checkpoint=True)
    assert plan(client.send, {}) == SCOPED
    started = anyio.current_time()
    with anyio.fail_after(limit * 2 + 1):
        sent = await send_all_within(client.send, (START, BODY), limit, SCOPED)
    assert not sent
    assert_took_about(anyio.current_time() - started, limit)
    assert client.sent == [START]


# --- plan: what shallot knows of a server's send -----------------------------------------------


def _hypercorn_send(context: type) -> Any:
    stream = object.__new__(HTTPStream)
    stream.context = object.__new__(context)
    return stream.app_send


def test_hypercorns_asyncio_send_is_stepped() -> None:
    assert plan(_hypercorn_send(AsyncioContext), {"http_version": "1.1"}) == STEP


def test_hypercorns_trio_send_is_sent_as_is_over_http1_where_no_scope_could_cut_it() -> None:
    send = _hypercorn_send(TrioContext)
    assert plan(send, {"http_version": "1.1"}) == AS_IS
    assert plan(send, {"http_version": "2"}) == STEP  # its flow control waits unshielded


def test_a_send_shallot_does_not_know_gets_a_scope() -> None:
    async def wrapped(message: Message) -> None:
        pass

    assert plan(wrapped, {}) == SCOPED


# --- StallWatch: where no scope can cut a send, the stream is ended instead ---------------------


async def test_a_stream_whose_send_no_scope_can_cut_is_ended_beside_it(limit: float) -> None:
    released, closed = anyio.Event(), anyio.Event()
    closed_at: list[float] = []

    async def chunks() -> AsyncIterator[bytes]:
        try:
            yield b"chunk"
        finally:
            closed_at.append(anyio.current_time())
            closed.set()

    async def shielded_send(message: Message) -> None:  # hypercorn's trio worker, in short
        with anyio.CancelScope(shield=True):
            await released.wait()

    iterator = chunks()
    watch = StallWatch(shielded_send, iterator, limit)
    with anyio.fail_after(limit * 4):
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch.watch, tg.cancel_scope)
            assert await iterator.__anext__() == b"chunk"  # suspended at its yield
            started = anyio.current_time()

            async def client_reads_again() -> None:  # once the stream is closed
                # shielded: the watch cancels the group when it ends the stream
                with anyio.CancelScope(shield=True), anyio.move_on_after(limit * 2):
                    await closed.wait()
                released.set()

            tg.start_soon(client_reads_again)
            sent = await watch.send(START)
    assert not sent
    assert watch.cut
    assert limit <= closed_at[0] - started <= limit * 1.25 + 0.1  # closed while the send waited


async def test_a_stream_whose_sends_return_is_not_ended(limit: float) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"chunk"

    async def prompt_send(message: Message) -> None:
        await anyio.sleep(limit / 2)  # slow, but each send within the bound

    watch = StallWatch(prompt_send, chunks(), limit)
    with anyio.fail_after(limit * 8):
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch.watch, tg.cancel_scope)
            results = [await watch.send(BODY) for _ in range(6)]  # 3 timeouts in all
            tg.cancel_scope.cancel()
    assert results == [True] * 6
    assert not watch.cut
