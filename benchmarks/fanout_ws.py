"""Fan-out over real websockets: one publish to 1,000 and 10,000 websocket subscribers.

A hypercorn server (asyncio or trio worker, in a child process on a 127.0.0.1 socket bound
here, passed down as ``fd://``) serves ``/sub`` (a websocket that subscribes to the channel
``news`` and forwards every message) and ``/pub`` (a websocket whose every message is
published to ``news``, answered ``ok``). The contenders:

- **shallot merge**: ``hub_lifespan()`` (in memory), ``hub.subscribe`` merged with the
  receiver: the chat shape (docs/broadcast.md), which also reads what the client sends;
- **shallot push**: the simplest push-only feed a user writes, ``async for message in
  messages: yield ws_send(message)``; shallot's runner still notices a client that leaves
  (its receive task reads on the handler's behalf once it is away from its receiver);
- **raw ASGI**: the floor, a bare ASGI 3 app on the same hub that sends from the
  connection's own task and never reads (a client that leaves is noticed at the next send);
- **broadcaster**: encode/broadcaster's ``Broadcast("memory://")`` on Starlette (asyncio
  worker only: broadcaster is built on asyncio queues), when the package is installed. Like
  the raw app, its endpoint sends from its own task and does not read the client.

Contenders run one after the other, ``--rounds`` times in turn (so the other load of the
machine spreads over all of them); each figure is the median over the rounds.

One client process (asyncio, the ``websockets`` library, no compression) opens N subscriber
websockets, then publishes ``--messages`` messages one at a time, each carrying its send time
(``time.monotonic``, one clock for both processes), and waits until all N got it before the
next. Reported: latency from publish to each subscriber's receipt, p50 and p99 over all
deliveries; the fan-out time (the last subscriber's latency), median over messages; and the
server's resident memory growth (``/proc/<pid>/status`` VmRSS) per subscriber while the N
websockets are open, websocket and subscription included.

Run: ``.venv/bin/python benchmarks/fanout_ws.py [--quick] [--sizes 1000 10000] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from common import rss

CONTENDERS = (
    ("raw", "asyncio"),
    ("shallot", "asyncio"),
    ("push", "asyncio"),
    ("broadcaster", "asyncio"),
    ("raw", "trio"),
    ("shallot", "trio"),
    ("push", "trio"),
)
NAMES = {"raw": "raw ASGI", "shallot": "shallot merge", "push": "shallot push"}


def shallot_app(push: bool) -> Any:
    from shallot import Receiver, build_server, standard_not_found, websocket, ws_send
    from shallot.broadcast import hub_lifespan
    from shallot.middlewares import apply_middleware, wrap_routes

    @websocket
    async def sub(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        async with scope["config"]["hub"].subscribe("news", max_buffer=256) as messages:
            async for source, item in receiver.merge(messages):
                if source is not receiver:
                    yield ws_send(item)

    @websocket
    async def feed(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        async with scope["config"]["hub"].subscribe("news", max_buffer=256) as messages:
            async for item in messages:
                yield ws_send(item)

    @websocket
    async def pub(scope: dict[str, Any], receiver: Receiver) -> AsyncIterator[Any]:
        async for text in receiver:
            await scope["config"]["hub"].publish("news", text)
            yield ws_send("ok")

    routes = [("/sub", ["WS"], feed if push else sub), ("/pub", ["WS"], pub)]
    handler = apply_middleware(wrap_routes(routes))(standard_not_found)
    return build_server(handler, lifespan=hub_lifespan())


def raw_app() -> Any:
    """A bare ASGI 3 app on shallot's hub: the floor of a websocket subscriber's cost."""
    from shallot.broadcast import open_hub

    hubs: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            async with open_hub() as hub:
                hubs.append(hub)
                await send({"type": "lifespan.startup.complete"})
                await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        if scope["path"] == "/sub":
            async with hubs[0].subscribe("news", max_buffer=256) as messages:
                async for item in messages:
                    await send({"type": "websocket.send", "text": item})
        else:
            while (message := await receive())["type"] == "websocket.receive":
                await hubs[0].publish("news", message["text"])
                await send({"type": "websocket.send", "text": "ok"})

    return app


def broadcaster_app() -> Any:
    from broadcaster import Broadcast
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    broadcast = Broadcast("memory://")

    async def sub(websocket: WebSocket) -> None:
        await websocket.accept()
        async with broadcast.subscribe("news") as subscriber:
            async for event in subscriber:  # type: ignore[union-attr]
                await websocket.send_text(event.message)

    async def pub(websocket: WebSocket) -> None:
        await websocket.accept()
        while True:
            await broadcast.publish("news", await websocket.receive_text())
            await websocket.send_text("ok")

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        async with broadcast:
            yield

    routes = [WebSocketRoute("/sub", sub), WebSocketRoute("/pub", pub)]
    return Starlette(routes=routes, lifespan=lifespan)


def serve(contender: str, worker: str, fd: int) -> None:
    """The child process: serves one contender on the inherited socket ``fd``."""
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"fd://{fd}"]
    config.accesslog = None
    config.loglevel = "WARNING"
    config.backlog = 4096
    if contender == "broadcaster":
        app = broadcaster_app()
    elif contender == "raw":
        app = raw_app()
    else:
        app = shallot_app(push=contender == "push")
    if worker == "asyncio":
        from hypercorn.asyncio import serve as asyncio_serve

        asyncio.run(asyncio_serve(app, config))  # type: ignore[arg-type]
    else:
        import trio
        from hypercorn.trio import serve as trio_serve

        trio.run(partial(trio_serve, app, config))  # type: ignore[arg-type]


async def measure(port: int, pid: int, count: int, messages: int) -> dict[str, float]:
    """The client side (see the module docstring)."""
    from websockets.asyncio.client import connect

    uri = f"ws://127.0.0.1:{port}"
    before = rss(pid)
    latencies: list[float] = []
    spans: list[float] = []
    state = {"left": count, "done": asyncio.Event(), "last": 0.0}

    async def subscriber(ready: asyncio.Event) -> None:
        async with connect(f"{uri}/sub", compression=None, open_timeout=60) as websocket:
            ready.set()
            async for message in websocket:
                latency = time.monotonic() - float(str(message).split()[1])
                latencies.append(latency)
                state["last"] = max(state["last"], latency)  # type: ignore[type-var]
                state["left"] -= 1  # type: ignore[operator]
                if state["left"] == 0:
                    state["done"].set()  # type: ignore[union-attr]

    tasks = []
    for start in range(0, count, 200):  # connect in waves, not 10,000 handshakes at once
        readies = [asyncio.Event() for _ in range(min(200, count - start))]
        tasks += [asyncio.create_task(subscriber(ready)) for ready in readies]
        await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in readies)), 120)
    async with connect(f"{uri}/pub", compression=None) as publisher:
        await publisher.send("warm 0")  # the subscriptions are live once this arrives
        await publisher.recv()
        await asyncio.wait_for(state["done"].wait(), 60)  # type: ignore[union-attr]
        await asyncio.sleep(0.5)
        after = rss(pid)
        latencies.clear()
        for number in range(messages):
            state.update(left=count, done=asyncio.Event(), last=0.0)
            await publisher.send(f"{number} {time.monotonic()!r}")
            await publisher.recv()
            await asyncio.wait_for(state["done"].wait(), 60)  # type: ignore[union-attr]
            spans.append(state["last"])  # type: ignore[arg-type]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    cuts = statistics.quantiles(latencies, n=100)
    return {
        "p50": cuts[49] * 1000,
        "p99": cuts[98] * 1000,
        "fanout": statistics.median(spans) * 1000,
        "bytes": (after - before) / count,
    }


def run(contender: str, worker: str, count: int, messages: int) -> dict[str, float]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    port = listener.getsockname()[1]
    command = [sys.executable, os.path.abspath(__file__), "serve", contender, worker]
    process = subprocess.Popen(  # its stderr is quiet unless it fails (not at terminate)
        [*command, str(listener.fileno())],
        pass_fds=(listener.fileno(),),
        stderr=subprocess.DEVNULL,
    )
    listener.close()
    try:
        time.sleep(1.5)  # the server starts (no readiness endpoint: the socket is bound)
        return asyncio.run(measure(port, process.pid, count, messages))
    finally:
        process.terminate()
        process.wait(10)


def have_broadcaster() -> bool:
    try:
        import broadcaster  # noqa: F401
    except ModuleNotFoundError:
        return False
    return True


def main() -> None:
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 subscribers, 10 messages")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--messages", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3, help="each contender, in turn")
    parser.add_argument("--only", nargs="+", help="contenders (raw shallot push broadcaster)")
    options = parser.parse_args()
    sizes = [1_000] if options.quick else options.sizes
    messages = 10 if options.quick else options.messages
    rounds = 1 if options.quick else options.rounds
    contenders = [
        (contender, worker)
        for contender, worker in CONTENDERS
        if (contender != "broadcaster" or have_broadcaster())
        and (not options.only or contender in options.only)
    ]
    rows = []
    for count in sizes:
        results: dict[tuple[str, str], list[dict[str, float]]] = {}
        for _ in range(rounds):
            for contender, worker in contenders:
                result = run(contender, worker, count, messages)
                results.setdefault((contender, worker), []).append(result)
                shown = {key: round(value, 1) for key, value in result.items()}
                print(f"  {contender} {worker} {count}: {shown}", file=sys.stderr)
        for (contender, worker), found in results.items():
            median = {key: statistics.median(r[key] for r in found) for key in found[0]}
            rows.append((NAMES.get(contender, contender), worker, count, median))
    print()
    print(
        f"One publish to N websocket subscribers over hypercorn (Python {sys.version.split()[0]})"
    )
    header = (
        f"{'contender':13}  {'worker':7}  {'N':>6}  {'p50 ms':>7}  {'p99 ms':>7}"
        f"  {'fan-out ms':>10}  {'B/subscriber':>12}  {'fan-out/raw':>11}  {'B/raw':>5}"
    )
    print(header)
    print("-" * len(header))
    floors = {(worker, count): r for contender, worker, count, r in rows if contender == "raw ASGI"}
    for contender, worker, count, r in rows:
        floor = floors.get((worker, count))
        ratios = (
            f"  {r['fanout'] / floor['fanout']:>11.2f}  {r['bytes'] / floor['bytes']:>5.2f}"
            if floor
            else ""
        )
        print(
            f"{contender:13}  {worker:7}  {count:>6}  {r['p50']:>7.1f}  {r['p99']:>7.1f}"
            f"  {r['fanout']:>10.1f}  {r['bytes']:>12,.0f}{ratios}"
        )
    if not have_broadcaster():
        print("broadcaster: skipped (pip install broadcaster starlette to compare)")


if __name__ == "__main__":
    main()
