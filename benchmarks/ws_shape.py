"""The websocket runner's hot path against the design card taken literally, over hypercorn.

Serves the ``shallot`` echo and the ``literal`` one (``literal.py``: every message through a
receive task, a memory stream and a send task) with each hypercorn worker on 127.0.0.1, has 32
connections ping-pong for a while, and prints the server's CPU time per message of each, side
by side, with their ratio: what the hot path saves, and what it would cost to drop it
(docs/design.md). Interleaved repeats; the ratio is of medians from one run.

Run: ``.venv/bin/python benchmarks/ws_shape.py [--quick]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from common import DASH, cell, environment, interleaved, ratio, table
from e2e import WORKERS, Server, Settings, cpu_split, run_ws

CONTENDERS = ("shallot", "literal")


def measure(settings: Settings) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """Returns (msg/s, server CPU µs/msg) samples per (worker, contender)."""
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {}
    split = cpu_split() if settings.pin else None
    server_cpus, client_cpus = split or (None, None)
    own_cpus = os.sched_getaffinity(0)
    if client_cpus:
        os.sched_setaffinity(0, client_cpus)
    try:
        for worker in settings.workers:
            started = time.monotonic()
            servers = {c: Server(worker, c, "ws_echo", server_cpus) for c in CONTENDERS}
            try:
                for server in servers.values():
                    server.check()
                for contender in CONTENDERS:
                    run_ws(servers[contender], settings, settings.warmup)
                for repeat in range(settings.repeats):
                    for contender in interleaved(CONTENDERS, repeat):
                        run = run_ws(servers[contender], settings, settings.seconds)
                        samples.setdefault((worker, contender), []).append(
                            (run.rate, run.cpu_per_op_us)
                        )
            finally:
                for server in servers.values():
                    server.stop()
            print(f"  hypercorn-{worker}: {settings.repeats} repeats "
                  f"({time.monotonic() - started:.0f} s)", file=sys.stderr)  # fmt: skip
    finally:
        os.sched_setaffinity(0, own_cpus)
    return samples


def report(samples: dict[tuple[str, str], list[tuple[float, float]]], settings: Settings) -> str:
    rows = []
    for worker in settings.workers:
        direct = samples.get((worker, "shallot"), [])
        literal = samples.get((worker, "literal"), [])
        direct_cpu, literal_cpu = [s[1] for s in direct], [s[1] for s in literal]
        rows.append(
            [
                f"hypercorn-{worker}",
                cell([s[0] for s in direct], 0),
                cell([s[0] for s in literal], 0),
                cell(direct_cpu, 1),
                cell(literal_cpu, 1),
                f"{ratio(literal_cpu, direct_cpu):.2f}",
            ]
        )
    header = [
        "server",
        "shallot msg/s",
        "literal msg/s",
        "shallot CPU µs/msg",
        "literal CPU µs/msg",
        "literal/shallot CPU",
    ]
    return (
        f"#### Websocket echo: hot path vs literal shape ({settings.repeats} repeats of "
        f"{settings.seconds:g} s, {settings.ws_connections} connections, median (min{DASH}max))\n"
        + table(header, rows)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="3 repeats of 1 s")
    parser.add_argument("--worker", choices=WORKERS, action="append", dest="workers")
    parser.add_argument("--ws-connections", type=int, default=32)
    args = parser.parse_args(argv)
    settings = Settings(ws_connections=args.ws_connections)
    if args.quick:
        settings.repeats, settings.seconds, settings.warmup = 3, 1.0, 0.5
    if args.workers:
        settings.workers = tuple(args.workers)
    print(environment())
    print(report(measure(settings), settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
