"""The HTTP hot path in CPU instructions per request, counted by valgrind (issue 18).

``hotpath.py`` times the hot path; on a shared machine its minima still move by ±5 %, more
than most single changes. This script counts instead: each contender's plain requests, driven
by hand as in ``hotpath.py``, run in a child process under valgrind's callgrind, once with
``--low`` and once with ``--high`` requests; the difference divided by the difference in
requests is what one request costs, with start-up and warm-up gone. The count is the same from
one run to the next (``PYTHONHASHSEED=0``), whatever else the machine does, so a change of 1 %
shows. Instructions are not time (a cache miss costs more than an add), so ``hotpath.py`` and
``e2e.py`` stay the measure; this one tells whether a change removed work.

``shallot-core`` is ``build_server`` around a handler that returns ``{"status": 200, "body":
b"hello"}``: no middleware, no ``text()``, no headers. It is the floor of shallot's own request
path, below which no middleware work can bring the plain scenario.

Needs valgrind (Debian: ``apt-get install valgrind``).

Run: ``.venv/bin/python benchmarks/instructions.py [--scenario plain] [--low 1000 --high 6000]``
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys

from apps import CONTENDERS, PLAIN_PATH, ASGIApp, build, drop, empty_body, http_scope, routing_path
from common import environment, table

_COLLECTED = re.compile(r"Collected : (\d+)")


def _core_app() -> ASGIApp:
    from shallot import build_server

    async def hello(request: dict[str, object]) -> dict[str, object]:
        return {"status": 200, "body": b"hello"}

    return build_server(hello)


def _child(contender: str, scenario: str, count: int) -> None:
    """Runs ``count`` requests after a warm-up of 2,000 (the counted process's work)."""
    if contender == "shallot-core":
        app, path = _core_app(), PLAIN_PATH
    elif scenario == "plain":
        app, path = build(contender, "plain", 1), PLAIN_PATH
    else:
        app, path = build(contender, "routing", 100), routing_path(100)
    copy = http_scope(path).copy
    for _ in range(2_000 + count):
        coroutine = app(copy(), empty_body, drop)
        try:
            coroutine.send(None)  # type: ignore[attr-defined]
        except StopIteration:
            continue
        raise RuntimeError("the request suspended: not a hot-path request")


def _instructions(contender: str, scenario: str, count: int) -> int:
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--child",
        contender,
        scenario,
        str(count),
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"valgrind failed for {contender} {scenario}:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    if argv is None and sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--low", type=int, default=1_000, help="requests in the first run")
    parser.add_argument("--high", type=int, default=6_000, help="requests in the second run")
    parser.add_argument(
        "--scenario", choices=("plain", "routing100"), action="append", dest="scenarios"
    )
    args = parser.parse_args(argv)
    if not 0 <= args.low < args.high:
        parser.error("--low must be at least 0 and below --high")
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (Debian: apt-get install valgrind)")
    print(environment(), flush=True)
    rows = []
    for scenario in args.scenarios or ("plain", "routing100"):
        contenders = [*CONTENDERS, *(["shallot-core"] if scenario == "plain" else [])]
        per_request = {}
        for contender in contenders:
            low = _instructions(contender, scenario, args.low)
            high = _instructions(contender, scenario, args.high)
            per_request[contender] = (high - low) / (args.high - args.low)
        starlette = per_request["starlette"]
        for contender, count in per_request.items():
            rows.append([scenario, contender, f"{count:,.0f}", f"{count / starlette:.3f}"])
    print(f"\ninstructions per request: ({args.high:,} - {args.low:,} requests) under callgrind")
    print(table(["scenario", "contender", "instructions/request", "/starlette"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
