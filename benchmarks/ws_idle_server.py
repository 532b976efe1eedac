"""Idle websockets over a real server: hypercorn's resident memory per open connection.

For each hypercorn worker (asyncio, trio) and each contender (raw ASGI, Starlette, shallot),
one server is started as ``e2e.py`` starts it (``python benchmarks/e2e.py serve <worker>
<contender> ws_echo <fd>`` on a 127.0.0.1 socket bound here, port 0, no probe). A client in a
separate process (asyncio, the ``websockets`` library, no compression) first opens and closes
``--warm`` connections (so imports, caches and the allocator's first arenas are paid before the
measurement), then opens ``--connections`` websockets (2,000 by default), at most 100
handshakes at a time, and holds them idle. The server's VmRSS (``/proc/<pid>/status``) is read
before the connections open and ``--idle-seconds`` after the last one did; the growth divided
by the count is the bytes per idle connection, hypercorn's own per-connection cost included
(the raw column is that floor). Then every connection echoes one message (checked) and closes.
Contenders interleaved, the order rotating each repeat; medians.

Run: ``.venv/bin/python benchmarks/ws_idle_server.py [--quick] [--worker trio]``
"""

from __future__ import annotations

import argparse
import asyncio
import os
import select
import socket
import subprocess
import sys
import time
from typing import Any

from apps import CONTENDERS, WS_PATH
from common import DASH, cell, environment, interleaved, median, ratio, rss, table

WORKERS = ("asyncio", "trio")
_HERE = os.path.dirname(os.path.abspath(__file__))
_CONCURRENT_HANDSHAKES = 100


# -- the client process ---------------------------------------------------------------------------


async def _client(port: int, count: int, warm: int) -> None:
    """Warms, opens ``count`` websockets, says ``open`` on stdout, waits for a line on stdin,
    then echoes once on each and closes them all, saying ``done``."""
    from websockets.asyncio.client import ClientConnection, connect

    uri = f"ws://127.0.0.1:{port}{WS_PATH}"
    gate = asyncio.Semaphore(_CONCURRENT_HANDSHAKES)

    async def open_one() -> ClientConnection:
        async with gate:
            return await connect(uri, compression=None, open_timeout=60, max_queue=4)

    async def echo_close(websocket: ClientConnection, text: str) -> None:
        async with gate:
            await websocket.send(text)
            reply = await asyncio.wait_for(websocket.recv(), 30)
            if reply != text:
                raise AssertionError(f"echo of {text!r} came back as {reply!r}")
            await websocket.close()

    async with asyncio.timeout(600):
        for websocket in await asyncio.gather(*(open_one() for _ in range(warm))):
            await websocket.close()
        print("warm", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        sockets = await asyncio.gather(*(open_one() for _ in range(count)))
        print("open", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        await asyncio.gather(*(echo_close(w, f"idle {i}") for i, w in enumerate(sockets)))
        print("done", flush=True)


# -- the measuring process ------------------------------------------------------------------------


class _Server:
    """One contender's hypercorn in a child process on an ephemeral 127.0.0.1 port."""

    def __init__(self, worker: str, contender: str) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", 0))
            listener.listen(1024)
            self.port: int = listener.getsockname()[1]
            command = [sys.executable, os.path.join(_HERE, "e2e.py"), "serve", worker]
            self.process = subprocess.Popen(
                [*command, contender, "ws_echo", str(listener.fileno())],
                pass_fds=(listener.fileno(),),
            )
        finally:
            listener.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _expect(client: subprocess.Popen[str], word: str, timeout: float) -> None:
    assert client.stdout is not None
    ready, _, _ = select.select([client.stdout], [], [], timeout)
    line = client.stdout.readline().strip() if ready else ""
    if line != word:
        raise RuntimeError(f"client said {line!r}, expected {word!r} (exit {client.poll()})")


def _say(client: subprocess.Popen[str]) -> None:
    assert client.stdin is not None
    client.stdin.write("go\n")
    client.stdin.flush()


def measure_one(worker: str, contender: str, args: argparse.Namespace) -> float:
    """Returns the server's RSS growth per idle websocket, in bytes."""
    server = _Server(worker, contender)
    client: subprocess.Popen[str] | None = None
    try:
        time.sleep(0.5)  # the server's start; the client retries its first handshake anyway
        give_up = time.monotonic() + 20
        while True:  # bounded: the server is up once a connection is accepted
            try:
                socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > give_up or server.process.poll() is not None:
                    raise
                time.sleep(0.05)
        client = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "client",
                *map(str, (server.port, args.connections, args.warm)),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        _expect(client, "warm", 120)
        time.sleep(args.idle_seconds)
        before = rss(server.process.pid)
        _say(client)
        _expect(client, "open", 300)
        time.sleep(args.idle_seconds)
        after = rss(server.process.pid)
        _say(client)
        _expect(client, "done", 300)
        if client.wait(timeout=30) != 0:
            raise RuntimeError(f"the client failed on {contender} {worker}")
        return (after - before) / args.connections
    finally:
        if client is not None and client.poll() is None:
            client.kill()
            client.wait(timeout=10)
        server.stop()


def main(argv: list[str] | None = None) -> int:
    if argv is None and sys.argv[1:2] == ["client"]:
        port, count, warm = (int(value) for value in sys.argv[2:5])
        asyncio.run(_client(port, count, warm))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1 repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--connections", type=int, default=2_000)
    parser.add_argument("--warm", type=int, default=200)
    parser.add_argument("--idle-seconds", type=float, default=1.5)
    parser.add_argument("--worker", choices=WORKERS, action="append", dest="workers")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats = 1
    if not 1 <= args.connections <= 10_000 or args.repeats < 1:
        parser.error("--connections between 1 and 10,000; --repeats ≥ 1")
    print(environment(), flush=True)
    samples: dict[tuple[str, str], list[float]] = {}
    for worker in args.workers or WORKERS:
        for repeat in range(args.repeats):
            for contender in interleaved(CONTENDERS, repeat):
                value = measure_one(worker, contender, args)
                samples.setdefault((worker, contender), []).append(value)
                print(f"  {worker} {contender}: {value:,.0f} B/conn", file=sys.stderr, flush=True)
    rows: list[list[Any]] = []
    for worker in args.workers or WORKERS:
        raw, shallot, starlette = (samples[worker, c] for c in CONTENDERS)
        floor = median(raw)
        rows.append(
            [
                f"hypercorn-{worker}",
                cell(raw, 0),
                cell(starlette, 0),
                cell(shallot, 0),
                f"{median(shallot) / 1024:.1f}",
                f"{ratio(shallot, starlette):.2f}",
                f"{(median(shallot) - floor) / (median(starlette) - floor):.2f}",
            ]
        )
    print(
        f"Server RSS per idle websocket ({args.connections:,} open, {args.repeats} repeats, "
        f"bytes, median (min{DASH}max))"
    )
    columns = ["server", "raw", "starlette", "shallot", "shallot KiB", "shallot/starlette"]
    print(table([*columns, "above raw: shallot/starlette"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
