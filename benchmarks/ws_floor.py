"""A websocket's own cost in process, with a peer that costs next to nothing (issue 18).

``inprocess.py`` drives each app through a fake server of two anyio memory streams: every
message then costs 21 to 24 µs for every contender, two task switches included, and the
framework's own part is lost in it. Here the peer is as cheap as an ASGI peer can be:

- ``echo``: ``receive`` is a coroutine that pops the next message from a pre-filled deque
  (``websocket.connect``, then ``--messages`` times the same ``websocket.receive``, then
  ``websocket.disconnect``) and ``send`` one that appends to a list: no stream, no task switch,
  no event loop round trip. Each app runs one connection to its end; µs per message is
  ``(time(N) - time(N0)) / (N - N0)`` with ``N0`` = 10% of ``N``, which takes the handshake,
  the task group and the close out of it; each length is timed 3 times and the fastest kept
  (other work on a shared machine only adds time). Every echo is checked (count and text).
- ``idle``: ``--idle-connections`` connections are opened at once; each ``receive`` returns
  ``websocket.connect`` and then waits on one ``anyio.Event`` shared by all of them. After
  ``--idle-seconds`` (a shallot connection leaves its watch after ~0.4 s in a read) the growth
  of tracemalloc's traced memory, divided by the count, is the bytes per open connection. The
  peer (a deque and two bound coroutine functions), the scope and the task are counted for
  everybody: the raw column is that floor. Afterwards every connection echoes once and closes.

Also timed in the echo part: ``shape_app``, shallot's handler shape with nothing around it (an
async generator over an async iterator, yielding ``ws_send`` dicts that a loop sends): the
least a framework built on that shape can cost. Reported per backend: raw, Starlette and
shallot side by side, the plain ratio
shallot/starlette, and the ratio above the raw floor ``(shallot - raw) / (starlette - raw)``:
what each framework adds. Contenders interleaved, the order rotating each repeat; medians.

Run: ``.venv/bin/python benchmarks/ws_floor.py [--quick] [--backend trio] [--part echo]``
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

import anyio
from apps import CONTENDERS, ASGIApp, build, ws_scope
from common import DASH, cell, environment, interleaved, median, ratio, table

BACKENDS = ("asyncio", "trio")
PARTS = ("echo", "idle")
Message = dict[str, Any]

_CONNECT: Message = {"type": "websocket.connect"}
_DISCONNECT: Message = {"type": "websocket.disconnect", "code": 1000}


def _inbox(count: int, text: str = "ping") -> deque[Message]:
    message = {"type": "websocket.receive", "text": text}
    return deque([_CONNECT, *([message] * count), _DISCONNECT])


async def _one_connection(app: ASGIApp, count: int) -> tuple[float, list[Message]]:
    """Runs one connection of ``count`` echoes; returns (seconds, what the app sent)."""
    pop = _inbox(count).popleft
    sent: list[Message] = []
    append = sent.append

    async def receive() -> Message:
        return pop()

    async def send(message: Message) -> None:
        append(message)

    scope = ws_scope()
    gc.collect()
    start = time.perf_counter()
    with anyio.fail_after(60):
        await app(scope, receive, send)  # type: ignore[arg-type]
    return time.perf_counter() - start, sent


def _check_echo(contender: str, sent: list[Message], count: int) -> None:
    accept, *echoes = sent
    closes = [m for m in echoes if m["type"] == "websocket.close"]
    echoes = [m for m in echoes if m["type"] != "websocket.close"]
    if accept["type"] != "websocket.accept" or len(echoes) != count or len(closes) > 1:
        raise AssertionError(f"{contender}: {len(echoes)} echoes of {count}, then {closes!r}")
    if any(m != {"type": "websocket.send", "text": "ping"} for m in echoes):
        raise AssertionError(f"{contender}: an echo was not the message sent")


async def _measure_echo(contender: str, app: ASGIApp, count: int, tries: int = 3) -> float:
    """Returns µs per echoed message above the fixed cost of one connection: the fastest of
    ``tries`` connections of each length (on a shared machine, other work only adds time)."""
    base = max(1, count // 10)
    times: dict[int, float] = {}
    for _ in range(tries):
        for length in (base, count):
            seconds, sent = await _one_connection(app, length)
            _check_echo(contender, sent, length)
            times[length] = min(times.get(length, seconds), seconds)
    return (times[count] - times[base]) / (count - base) * 1e6


class _IdlePeer:
    """One connection's peer: the handshake, then a wait on the shared gate; after it, what
    ``inbox`` holds."""

    __slots__ = ("gate", "inbox", "sent")

    def __init__(self, gate: anyio.Event) -> None:
        self.gate = gate
        self.inbox: deque[Message] = deque([_CONNECT])
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        if not self.inbox:
            await self.gate.wait()
        return self.inbox.popleft()

    async def send(self, message: Message) -> None:
        self.sent.append(message)


async def _measure_idle(contender: str, app: ASGIApp, connections: int, idle: float) -> float:
    """Returns bytes per idle connection; checks every one echoes and closes afterwards."""
    gate = anyio.Event()
    peers: list[_IdlePeer] = []
    with anyio.fail_after(60 + connections / 100):
        async with anyio.create_task_group() as tg:
            gc.collect()
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                for _ in range(connections):
                    peer = _IdlePeer(gate)
                    peers.append(peer)
                    tg.start_soon(app, ws_scope(), peer.receive, peer.send)
                await anyio.wait_all_tasks_blocked()
                await anyio.sleep(idle)
                gc.collect()
                after = tracemalloc.get_traced_memory()[0]
            finally:
                tracemalloc.stop()
            for index, peer in enumerate(peers):
                peer.inbox.extend(
                    ({"type": "websocket.receive", "text": f"still there {index}"}, _DISCONNECT)
                )
            gate.set()
    for index, peer in enumerate(peers):
        kinds = [m["type"] for m in peer.sent]
        if kinds[:2] != ["websocket.accept", "websocket.send"] or peer.sent[1].get("text") != (
            f"still there {index}"
        ):
            raise AssertionError(f"{contender}: connection {index} sent {peer.sent!r}")
    return (after - before) / connections


class _Messages:
    """An async iterator over the texts ASGI ``receive`` brings: the least a receiver does."""

    __slots__ = ("receive",)

    def __init__(self, receive: Callable[[], Any]) -> None:
        self.receive = receive

    def __aiter__(self) -> _Messages:
        return self

    async def __anext__(self) -> str:
        message = await self.receive()
        if message["type"] != "websocket.receive":
            raise StopAsyncIteration
        return str(message["text"])


async def shape_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The shape of a shallot handler with no framework around it (the ``shape`` row): an
    async generator over an async iterator of texts, yielding ``ws_send`` dicts that a loop
    sends. No state, no task group, no checks: what the generator protocol alone costs."""
    from shallot import ws_send

    async def echo(messages: _Messages) -> Any:
        async for text in messages:
            yield ws_send(text)

    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    async for message in echo(_Messages(receive)):
        await send(message)


def _run(backend: str, function: Callable[..., Any], *args: Any) -> Any:
    return anyio.run(partial(function, *args), backend=backend)


def measure(args: argparse.Namespace) -> dict[tuple[str, str, str], list[float]]:
    """Returns samples[(backend, part, contender)]: one value per repeat."""
    samples: dict[tuple[str, str, str], list[float]] = {}
    apps = {contender: build(contender, "ws") for contender in CONTENDERS}
    for backend in args.backends:
        for contender in CONTENDERS:  # warm-up: imports (trio's first idle run imports
            _run(backend, _measure_echo, contender, apps[contender], 1_000)  # ~8 KB/conn)
            _run(backend, _measure_idle, contender, apps[contender], 20, 0.0)
        for repeat in range(args.repeats):
            started = time.perf_counter()
            for contender in interleaved(CONTENDERS, repeat):
                if "echo" in args.parts:
                    value = _run(backend, _measure_echo, contender, apps[contender], args.messages)
                    samples.setdefault((backend, "echo", contender), []).append(value)
                if "idle" in args.parts:
                    value = _run(
                        backend,
                        _measure_idle,
                        contender,
                        apps[contender],
                        args.idle_connections,
                        args.idle_seconds,
                    )
                    samples.setdefault((backend, "idle", contender), []).append(value)
            if "echo" in args.parts:
                value = _run(backend, _measure_echo, "shape", shape_app, args.messages)
                samples.setdefault((backend, "echo", "shape"), []).append(value)
            print(
                f"  {backend} repeat {repeat + 1}/{args.repeats} "
                f"({time.perf_counter() - started:.1f} s)",
                file=sys.stderr,
                flush=True,
            )
    return samples


def report(samples: dict[tuple[str, str, str], list[float]], args: argparse.Namespace) -> str:
    rows = []
    for backend in args.backends:
        for part in args.parts:
            raw, shallot, starlette = (samples.get((backend, part, c), []) for c in CONTENDERS)
            if not raw:
                continue
            digits = 3 if part == "echo" else 0
            floor = median(raw)
            above = (median(shallot) - floor) / (median(starlette) - floor)
            rows.append(
                [
                    backend,
                    "µs/msg" if part == "echo" else "bytes/conn",
                    cell(raw, digits),
                    cell(starlette, digits),
                    cell(shallot, digits),
                    f"{ratio(shallot, starlette):.2f}",
                    f"{above:.2f}",
                ]
            )
    heading = (
        f"Websocket cost with a near-free peer ({args.repeats} repeats, median (min{DASH}max); "
        f"echo: {args.messages:,} messages; idle: {args.idle_connections:,} connections, "
        f"{args.idle_seconds:g} s)"
    )
    columns = [
        "backend",
        "unit",
        "raw",
        "starlette",
        "shallot",
        "shallot/starlette",
        "above raw: shallot/starlette",
    ]
    shapes = [
        f"{backend} {median(samples[backend, 'echo', 'shape']):.3f}"
        for backend in args.backends
        if (backend, "echo", "shape") in samples
    ]
    shape = (
        f"\nThe handler shape alone (shape_app: async generator, async iterator, ws_send; no "
        f"state), µs/msg: {', '.join(shapes)}"
        if shapes
        else ""
    )
    return heading + "\n" + table(columns, rows) + shape


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="3 repeats, fewer messages")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--messages", type=int, default=100_000, help="echoes per timing")
    parser.add_argument("--idle-connections", type=int, default=1_000)
    parser.add_argument("--idle-seconds", type=float, default=1.0)
    parser.add_argument("--backend", choices=BACKENDS, action="append", dest="backends")
    parser.add_argument("--part", choices=PARTS, action="append", dest="parts")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.messages, args.idle_connections = 3, 30_000, 300
    args.backends = tuple(args.backends or BACKENDS)
    args.parts = tuple(args.parts or PARTS)
    if args.repeats < 1 or args.messages < 10 or args.idle_connections < 1:
        parser.error("--repeats ≥ 1, --messages ≥ 10, --idle-connections ≥ 1")
    args.messages = min(args.messages, 10_000_000)
    print(environment(), flush=True)
    print(report(measure(args), args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
