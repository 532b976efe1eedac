"""Many slow websockets: server CPU per message when thousands of connections each send now and
then, the shape of a chat room rather than of a ping-pong benchmark.

``--connections`` websockets (2,000 by default) are opened in process through fake peers (as
``inprocess.py`` does) on one event loop. Each then sends one text message every ``--period``
seconds (staggered, so messages arrive evenly), waits for the echo and checks it, for
``--seconds``. The process CPU time over that stretch is divided by the number of messages. The
fake peers' own work is in every column; raw ASGI is that floor. Contenders run interleaved,
``--repeats`` times, on asyncio and trio.

What it shows: a framework that keeps a timer or a task per connection pays for it on every
connection whether it is busy or not; here that cost shows up per message.

Run: ``.venv/bin/python benchmarks/ws_many.py [--quick]``
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import anyio
from apps import CONTENDERS, build
from common import DASH, cell, environment, interleaved, ratio, table
from inprocess import Peer


async def _measure(contender: str, connections: int, period: float, seconds: float) -> float:
    """Returns the process CPU µs per echoed message for ``contender``."""
    app = build(contender, "ws")
    peers = [Peer() for _ in range(connections)]
    count = 0

    async def client(peer: Peer, offset: float, number: int) -> None:
        nonlocal count
        await anyio.sleep(offset)
        end = anyio.current_time() + seconds - offset
        sent = 0
        while anyio.current_time() < end:
            text = f"{number}:{sent}"
            await peer.echo(text)  # checks the echo
            sent += 1
            count += 1
            await anyio.sleep(period)

    with anyio.fail_after(seconds + 120):
        async with anyio.create_task_group() as servers:
            for peer in peers:
                servers.start_soon(peer.serve, app)
                await peer.connect()
            await anyio.sleep(1.0)  # every connection settles into its idle state
            start = time.process_time()
            async with anyio.create_task_group() as clients:
                for number, peer in enumerate(peers):
                    clients.start_soon(client, peer, period * number / connections, number)
            used = time.process_time() - start
            for peer in peers:
                await peer.disconnect()
    for peer in peers:
        peer.close()
    if count == 0:
        raise RuntimeError(f"{contender}: no message was echoed")
    return used / count * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 connections, 3 s, 3 repeats")
    parser.add_argument("--connections", type=int, default=2_000)
    parser.add_argument("--period", type=float, default=0.5, help="seconds between messages")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backend", choices=("asyncio", "trio"), action="append")
    args = parser.parse_args(argv)
    if args.quick:
        args.connections, args.seconds = 1_000, 3.0
    backends = args.backend or ["asyncio", "trio"]
    print(environment())
    print(
        f"\n{args.connections:,} websockets, one message every {args.period} s each, "
        f"{args.seconds} s per run, {args.repeats} repeats: process CPU µs per message, "
        f"median (min{DASH}max)\n"
    )
    for backend in backends:
        samples: dict[str, list[float]] = {name: [] for name in CONTENDERS}
        for repeat in range(args.repeats):
            for contender in interleaved(CONTENDERS, repeat):
                value: Any = anyio.run(
                    _measure,
                    contender,
                    args.connections,
                    args.period,
                    args.seconds,
                    backend=backend,
                )
                samples[contender].append(value)
                print(f"  {backend} {contender}: {value:.1f} µs/msg", file=sys.stderr)
        rows = [
            [
                backend,
                cell(samples["raw"]),
                cell(samples["shallot"]),
                cell(samples["starlette"]),
                f"{ratio(samples['shallot'], samples['starlette']):.2f}",
            ]
        ]
        print(table(["backend", "raw", "shallot", "starlette", "shallot/starlette"], rows))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
