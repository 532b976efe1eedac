"""The chat demo (``examples/chat``) on hypercorn with two workers and Redis (issue 7).

Each worker process runs its own hub with one Redis listener; websocket clients land on
whichever worker the kernel hands their connection to. The app greets each client with the id
of the process that serves it, so a test opens connections until it holds some on two
different workers (bounded), then checks that every client gets every message of its room,
and that a broker crash reaches every client as an ``unrecovered`` event (the rooms keep a
history, which the crash lost: issue 17), after which the room works again. The client is
``websockets``' asyncio one; the worker class is the parameter.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from typing import Any

import anyio
import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from .redis_server import RedisServer, running_redis
from .server import HypercornServer, run_hypercorn

pytestmark = pytest.mark.slow  # real processes and sockets; still part of the default run

APP = "examples.chat.app:app"
#: How many connections a test may open to find two workers.
MAX_CONNECTIONS = 40


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """The ``websockets`` client used here is its asyncio one."""
    return "asyncio"


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def worker_class(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


@pytest.fixture(scope="module")
async def chat_server(worker_class: str, redis: RedisServer) -> AsyncIterator[HypercornServer]:
    async with run_hypercorn(
        APP,
        worker_class=worker_class,
        extra_args=["--workers", "2"],
        env={"SHALLOT_REDIS_URL": redis.url},
    ) as server:
        with anyio.fail_after(20):  # the harness returns once the first worker serves
            await server.wait_for_log("Running on", count=2)
        yield server


class Member:
    """One chat client: its connection, and the id of the worker that serves it."""

    def __init__(self, nick: str, ws: ClientConnection, pid: int) -> None:
        self.nick = nick
        self.ws = ws
        self.pid = pid

    async def next_event(self, *kinds: str) -> dict[str, Any]:
        """Returns the next event of one of ``kinds`` (skipping the others)."""
        while True:
            event: dict[str, Any] = json.loads(await self.ws.recv())
            if event["type"] in kinds:
                return event


async def join(stack: AsyncExitStack, server: HypercornServer, room: str, nick: str) -> Member:
    ws = await stack.enter_async_context(
        connect(
            f"ws://127.0.0.1:{server.port}/rooms/{room}?nick={nick}",
            proxy=None,
            open_timeout=5,
            close_timeout=5,
            # Members read only what a test looks for: an unbounded queue, so the events they
            # skip never pause the connection (its close frame would wait behind them).
            max_queue=None,
        )
    )
    welcome = json.loads(await ws.recv())
    assert welcome["type"] == "welcome"
    assert (welcome["room"], welcome["nick"]) == (room, nick)
    return Member(nick, ws, int(welcome["pid"]))


async def join_two_workers(
    stack: AsyncExitStack, server: HypercornServer, room: str
) -> list[Member]:
    """Opens connections to ``room`` until two workers serve some (at least three members),
    a few at once: one after the other, the worker that just accepted one tends to win the
    next accept too on a busy machine."""
    members: list[Member] = []

    async def one(nick: str) -> None:
        members.append(await join(stack, server, room, nick))

    while len({member.pid for member in members}) < 2 or len(members) < 3:
        assert len(members) < MAX_CONNECTIONS, "every connection landed on one worker"
        async with anyio.create_task_group() as group:
            for number in range(4):
                group.start_soon(one, f"m{len(members)}-{number}")
    return members


async def wait_live(member: Member, attempts: int = 200) -> None:
    """Waits until the member's worker is connected to the broker again: until a probe it
    sends comes back to it (while its worker reconnects, with backoff, it gets an error)."""
    for attempt in range(attempts):
        probe = f"probe {member.nick} {attempt}"
        await member.ws.send(probe)
        while (event := await member.next_event("message", "error"))["type"] == "message":
            if event["text"] == probe:
                return
        await anyio.sleep(0.025)  # the worker's listener reconnects on its own schedule
    pytest.fail(f"the worker of {member.nick} never reconnected")


async def test_the_page_and_its_script_are_served(chat_server: HypercornServer) -> None:
    async with httpx.AsyncClient(base_url=chat_server.url, timeout=10) as http:
        page = await http.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert '<script src="/chat.js">' in page.text
        script = await http.get("/chat.js")
        assert script.status_code == 200
        assert "new WebSocket" in script.text


async def test_members_on_different_workers_get_every_message(
    chat_server: HypercornServer,
) -> None:
    with anyio.fail_after(30):
        async with AsyncExitStack() as stack:
            members = await join_two_workers(stack, chat_server, "cross")
            for member in members:
                await member.ws.send(f"hello from {member.nick}")
            expected = {(member.nick, f"hello from {member.nick}") for member in members}
            for member in members:
                got = set()
                for _ in members:
                    event = await member.next_event("message")
                    got.add((event["nick"], event["text"]))
                assert got == expected, member.nick
            # one sender's messages arrive in the order it sent them, on every worker
            for number in range(20):
                await members[0].ws.send(str(number))
            for member in members:
                texts = [(await member.next_event("message"))["text"] for _ in range(20)]
                assert texts == [str(number) for number in range(20)]


async def test_a_broker_crash_reaches_every_member_and_the_room_recovers(
    chat_server: HypercornServer, redis: RedisServer
) -> None:
    with anyio.fail_after(30):
        async with AsyncExitStack() as stack:
            members = await join_two_workers(stack, chat_server, "crash")
            redis.kill()
            await members[0].ws.send("into the void")
            error = await members[0].next_event("error")
            assert "unreachable" in error["text"]
            await anyio.to_thread.run_sync(redis.start)
            for member in members:  # every worker tells every member the history was lost
                event = await member.next_event("unrecovered")
                assert "history was lost" in event["reason"]
            for member in {member.pid: member for member in members}.values():
                await wait_live(member)  # one member per worker
            for member in members:
                await member.ws.send(f"back: {member.nick}")
            for member in members:
                got: set[str] = set()
                while len(got) < len(members):
                    event = await member.next_event("message")
                    if event["text"].startswith("back: "):
                        got.add(event["text"])
                assert got == {f"back: {m.nick}" for m in members}
