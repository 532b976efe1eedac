"""The HTTP hot path alone: µs per request with no event loop at all (issue 18).

A plain request never suspends in any contender (no body to wait for, a ``send`` that returns
at once), so its coroutine can be driven by hand: ``coroutine.send(None)`` runs the whole
request and raises ``StopIteration``. What is timed is then only the app's own code: no
scheduler, no task switch, the same on asyncio and trio. The garbage collector is off while
timing. Each contender runs ``--count`` requests per repeat, interleaved, for ``--repeats``
repeats; the table gives the minimum (the run least disturbed by the machine's other load) and
the median, and ratios of minima from this one run.

Use it to measure one change to the hot path: run it on the code before and after (another
checkout first on ``PYTHONPATH``), several times, alternating.

Run: ``.venv/bin/python benchmarks/hotpath.py [--repeats 20] [--scenario plain]``
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time

from apps import (
    CONTENDERS,
    PLAIN_PATH,
    ASGIApp,
    build,
    drop,
    empty_body,
    http_scope,
    routing_path,
)
from common import environment, table


def _time(app: ASGIApp, path: str, count: int) -> float:
    """Returns µs per request over ``count`` requests driven without an event loop."""
    copy = http_scope(path).copy
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(count):
            coroutine = app(copy(), empty_body, drop)
            try:
                coroutine.send(None)  # type: ignore[attr-defined]
            except StopIteration:
                continue
            coroutine.close()  # type: ignore[attr-defined]
            raise RuntimeError("the request suspended: not a hot-path request")
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    return elapsed / count * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--count", type=int, default=10_000, help="requests per repeat")
    parser.add_argument(
        "--scenario", choices=("plain", "routing100"), action="append", dest="scenarios"
    )
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.count < 1:
        parser.error("--repeats and --count must be at least 1")
    print(environment(), flush=True)
    rows = []
    for name in args.scenarios or ("plain", "routing100"):
        scenario, size, path = (
            ("plain", 1, PLAIN_PATH) if name == "plain" else ("routing", 100, routing_path(100))
        )
        apps = {contender: build(contender, scenario, size) for contender in CONTENDERS}
        samples: dict[str, list[float]] = {contender: [] for contender in CONTENDERS}
        for _ in range(args.repeats):
            for contender, app in apps.items():
                # Starlette's routing is ~50 µs a request: fewer of them take as long.
                count = args.count if contender != "starlette" else max(1, args.count // 4)
                samples[contender].append(_time(app, path, count))
        best = {contender: min(values) for contender, values in samples.items()}
        rows.append(
            [
                name,
                *(f"{best[c]:.2f} ({statistics.median(samples[c]):.2f})" for c in CONTENDERS),
                f"{best['shallot'] / best['starlette']:.3f}",
                f"{best['shallot'] - best['raw']:.2f}",
            ]
        )
    header = [
        "scenario",
        *(f"{c} µs min (median)" for c in CONTENDERS),
        "shallot/starlette",
        "shallot \u2212 raw µs",
    ]
    print(f"\n{args.repeats} interleaved repeats of {args.count:,} requests (Starlette: a quarter)")
    print(table(header, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
