"""In-process benchmarks: each contender's ASGI app called directly, no server, no sockets.

Measures, on the asyncio and the trio backend (``anyio.run``):

- ``plain`` and ``routing`` (10, 100, 1,000 routes): µs per request. The app is called in a
  loop with a fresh copy of one HTTP scope per request, a ``receive`` that returns the empty
  body and a ``send`` that drops the messages, so only the app's own work is timed. The
  number of requests is calibrated to about ``--seconds`` per measurement.
- ``ws_echo``: µs per message on one websocket, strict ping-pong: a fake peer (two anyio
  memory streams standing in for the server) sends one ``websocket.receive`` and waits for the
  ``websocket.send`` before sending the next; two task switches per message for everyone.
- ``ws_idle``: bytes per idle connection: ``--idle-connections`` websockets are opened through
  fake peers, then left idle for ``--idle-seconds`` (a shallot connection leaves the watch after the
  handler sat in a read for 0.4 s), and tracemalloc's traced memory growth is divided by the
  number of connections. The peer's streams and the scope are counted too: the raw column is
  the floor everyone pays.
- ``ws_idle`` at 10,000 shallot connections: they open, idle, each echoes once and all close.

Every contender is validated before and after timing (status, content-type and body; the echo
of a unique message). Contenders run interleaved (the order rotates with each repeat), at
least three repeats; results are medians with min-max and ratios of medians in the same run.

Run: ``.venv/bin/python benchmarks/inprocess.py [--quick]``
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from apps import (
    CONTENDERS,
    PLAIN_PATH,
    ROUTE_SIZES,
    ASGIApp,
    build,
    call_http,
    drop,
    empty_body,
    expected,
    http_scope,
    routing_path,
    ws_scope,
)
from common import DASH, cell, environment, interleaved, median, ratio, table, verdict

BACKENDS = ("asyncio", "trio")
Message = dict[str, Any]


@dataclass
class Settings:
    repeats: int = 5
    seconds: float = 0.3  # per timing measurement
    idle_connections: int = 1_000
    idle_seconds: float = 1.0
    big_idle: int = 10_000
    big_idle_once: bool = False  # the 10,000-connection check on the first backend only
    backends: tuple[str, ...] = BACKENDS
    scenarios: tuple[str, ...] = ("plain", "routing", "ws_echo", "ws_idle")


@dataclass
class Results:
    """samples[backend][scenario][contender] -> list of values, one per repeat."""

    samples: dict[str, dict[str, dict[str, list[float]]]] = field(default_factory=dict)
    big_idle: dict[str, float] = field(default_factory=dict)  # backend -> bytes/conn

    def add(self, backend: str, scenario: str, contender: str, value: float) -> None:
        by_scenario = self.samples.setdefault(backend, {})
        by_scenario.setdefault(scenario, {}).setdefault(contender, []).append(value)

    def get(self, backend: str, scenario: str, contender: str) -> list[float]:
        return self.samples.get(backend, {}).get(scenario, {}).get(contender, [])


# -- HTTP -----------------------------------------------------------------------------------------


async def _check_http(app: ASGIApp, scenario: str, path: str, when: str) -> None:
    got = await call_http(app, path)
    if got != expected(scenario):
        raise AssertionError(f"{scenario} {path} {when} timing: {got!r} != {expected(scenario)!r}")


async def _time_http(app: ASGIApp, path: str, count: int) -> float:
    """Returns the seconds ``count`` requests took."""
    copy = http_scope(path).copy
    gc.collect()
    start = time.perf_counter()
    for _ in range(count):
        await app(copy(), empty_body, drop)
    return time.perf_counter() - start


async def _measure_http(app: ASGIApp, scenario: str, path: str, seconds: float) -> float:
    await _check_http(app, scenario, path, "before")
    warm = await _time_http(app, path, 200)
    count = max(200, min(2_000_000, int(seconds / (warm / 200))))
    elapsed = await _time_http(app, path, count)
    await _check_http(app, scenario, path, "after")
    return elapsed / count * 1e6


# -- websockets -----------------------------------------------------------------------------------


class Peer:
    """The server side of one in-process websocket: ``to_app`` carries what the client sends,
    ``from_app`` what the app sent."""

    def __init__(self) -> None:
        self.to_app: MemoryObjectSendStream[Message]
        self.from_app: MemoryObjectReceiveStream[Message]
        self.to_app, self._app_rx = anyio.create_memory_object_stream[Message](math.inf)
        self._app_tx, self.from_app = anyio.create_memory_object_stream[Message](math.inf)

    async def serve(self, app: ASGIApp) -> None:
        with self._app_rx, self._app_tx:
            await app(ws_scope(), self._app_rx.receive, self._app_tx.send)  # type: ignore[arg-type]

    async def connect(self) -> None:
        await self.to_app.send({"type": "websocket.connect"})
        reply = await self.from_app.receive()
        if reply["type"] != "websocket.accept":
            raise AssertionError(f"handshake answered with {reply!r}")

    async def echo(self, text: str) -> None:
        await self.to_app.send({"type": "websocket.receive", "text": text})
        reply = await self.from_app.receive()
        if reply.get("type") != "websocket.send" or reply.get("text") != text or reply.get("bytes"):
            raise AssertionError(f"echo of {text!r} came back as {reply!r}")

    async def disconnect(self) -> None:
        await self.to_app.send({"type": "websocket.disconnect", "code": 1000})

    def close(self) -> None:
        self.to_app.close()
        self.from_app.close()


async def _time_echo(peer: Peer, count: int) -> float:
    send, receive = peer.to_app.send, peer.from_app.receive
    message = {"type": "websocket.receive", "text": "ping"}
    gc.collect()
    start = time.perf_counter()
    for _ in range(count):
        await send(message)
        await receive()
    return time.perf_counter() - start


async def _measure_echo(app: ASGIApp, seconds: float) -> float:
    peer = Peer()
    with anyio.fail_after(60 + 20 * seconds):
        async with anyio.create_task_group() as tg:
            tg.start_soon(peer.serve, app)
            await peer.connect()
            await peer.echo("before timing")
            warm = await _time_echo(peer, 200)
            count = max(200, min(2_000_000, int(seconds / (warm / 200))))
            elapsed = await _time_echo(peer, count)
            sent = peer.from_app.statistics().current_buffer_used
            if sent:
                raise AssertionError(f"{sent} replies were left over")
            await peer.echo("after timing ✓")
            await peer.disconnect()
        peer.close()
    return elapsed / count * 1e6


async def _measure_idle(app: ASGIApp, connections: int, idle_seconds: float) -> float:
    """Returns bytes per idle connection; checks every connection echoes afterwards."""
    peers: list[Peer] = []
    with anyio.fail_after(120 + connections / 100):
        async with anyio.create_task_group() as tg:
            gc.collect()
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                for _ in range(connections):
                    peer = Peer()
                    tg.start_soon(peer.serve, app)
                    await peer.connect()
                    peers.append(peer)
                await anyio.sleep(idle_seconds)
                gc.collect()
                after = tracemalloc.get_traced_memory()[0]
            finally:
                tracemalloc.stop()
            for index, peer in enumerate(peers):
                await peer.echo(f"still there {index}")
            for peer in peers:
                await peer.disconnect()
        for peer in peers:
            peer.close()
    return (after - before) / connections


# -- the run --------------------------------------------------------------------------------------


def _run(backend: str, function: Callable[..., Any], *args: Any) -> Any:
    return anyio.run(partial(function, *args), backend=backend)


def measure(settings: Settings, log: Callable[[str], None] = print) -> Results:
    """Runs every in-process measurement and returns the samples."""
    results = Results()
    http_cases = [("plain", PLAIN_PATH, 1)] + [
        (f"routing{size}", routing_path(size), size) for size in ROUTE_SIZES
    ]
    http_cases = [case for case in http_cases if case[0].rstrip("0123456789") in settings.scenarios]
    for backend in settings.backends:
        apps = {
            (name, contender): build(
                contender, "ws" if name == "ws" else name.rstrip("0123456789"), size
            )
            for name, _, size in [*http_cases, ("ws", "", 1)]
            for contender in CONTENDERS
        }
        for repeat in range(settings.repeats):
            started = time.perf_counter()
            order = interleaved(CONTENDERS, repeat)
            for name, path, _ in http_cases:
                scenario = name.rstrip("0123456789")
                for contender in order:
                    value = _run(
                        backend,
                        _measure_http,
                        apps[name, contender],
                        scenario,
                        path,
                        settings.seconds,
                    )
                    results.add(backend, name, contender, value)
            for contender in order if "ws_echo" in settings.scenarios else ():
                value = _run(backend, _measure_echo, apps["ws", contender], settings.seconds)
                results.add(backend, "ws_echo", contender, value)
            for contender in order if "ws_idle" in settings.scenarios else ():
                value = _run(
                    backend,
                    _measure_idle,
                    apps["ws", contender],
                    settings.idle_connections,
                    settings.idle_seconds,
                )
                results.add(backend, "ws_idle", contender, value)
            log(
                f"  in-process {backend} repeat {repeat + 1}/{settings.repeats} "
                f"({time.perf_counter() - started:.1f} s)"
            )
        first = backend == settings.backends[0]
        if (
            "ws_idle" in settings.scenarios
            and settings.big_idle
            and (first or not settings.big_idle_once)
        ):
            started = time.perf_counter()
            results.big_idle[backend] = _run(
                backend,
                _measure_idle,
                build("shallot", "ws"),
                settings.big_idle,
                settings.idle_seconds,
            )
            log(
                f"  in-process {backend}: {settings.big_idle:,} idle shallot websockets opened, "
                f"idled, echoed and closed ({time.perf_counter() - started:.1f} s)"
            )
    return results


HTTP_ROWS = ("plain", "routing10", "routing100", "routing1000")


def report(results: Results, settings: Settings) -> str:
    """Returns the Markdown tables and the target verdicts."""
    out: list[str] = []
    targets: list[list[str]] = []
    for backend in settings.backends:
        rows = []
        for name in (*HTTP_ROWS, "ws_echo", "ws_idle"):
            unit = (
                "bytes/conn" if name == "ws_idle" else ("µs/msg" if name == "ws_echo" else "µs/req")
            )
            digits = 0 if name == "ws_idle" else 2
            raw, shallot, starlette = (results.get(backend, name, c) for c in CONTENDERS)
            if not (raw or shallot or starlette):
                continue
            rows.append(
                [
                    name,
                    unit,
                    cell(raw, digits),
                    cell(shallot, digits),
                    cell(starlette, digits),
                    f"{ratio(shallot, raw):.2f}",
                    f"{ratio(shallot, starlette):.2f}",
                    f"{ratio(starlette, raw):.2f}",
                ]
            )
        out.append(
            f"#### In process, {backend} ({settings.repeats} repeats, median (min{DASH}max))"
        )
        out.append(
            table(
                [
                    "scenario",
                    "unit",
                    "raw",
                    "shallot",
                    "starlette",
                    "shallot/raw",
                    "shallot/starlette",
                    "starlette/raw",
                ],
                rows,
            )
        )
        raw, shallot, starlette = (results.get(backend, "ws_idle", c) for c in CONTENDERS)
        if raw and shallot and starlette:
            floor = median(raw)
            own = median(shallot) - floor
            their = median(starlette) - floor
            out.append(
                f"\nws_idle above the raw floor (the fake peer, the scope and the task "
                f"everyone pays): shallot {own:,.0f} B, starlette {their:,.0f} B per "
                f"connection (shallot/starlette {own / their:.2f})"
            )
        if backend in results.big_idle:
            out.append(
                f"\n{settings.big_idle:,} idle shallot websockets in one process: "
                f"{results.big_idle[backend]:,.0f} bytes/conn (opened, idled "
                f"{settings.idle_seconds:g} s, each echoed once, all closed: ok)"
            )
        out.append("")

        def target(
            name: str, value: float, limit: float, what: str, backend: str = backend
        ) -> None:
            if math.isnan(value):
                return
            targets.append([backend, name, what, f"{value:.2f}", verdict(value, limit)])

        def vs_starlette(name: str, backend: str = backend) -> float:
            return ratio(
                results.get(backend, name, "shallot"), results.get(backend, name, "starlette")
            )

        # Issue 18's targets for HTTP; issue 5's for websockets.
        target("plain", median(results.get(backend, "plain", "shallot")), 3.0, "shallot µs ≤ 3.0")
        target("plain", vs_starlette("plain"), 0.35, "shallot/starlette ≤ 0.35")
        target("routing100", vs_starlette("routing100"), 0.08, "shallot/starlette ≤ 0.08")
        scaling = ratio(
            results.get(backend, "routing1000", "shallot"),
            results.get(backend, "routing10", "shallot"),
        )
        target("routing", scaling, 1.05, "shallot 1000 routes / 10 routes ≤ 1.05")
        target("ws_echo", vs_starlette("ws_echo"), 1.0, "shallot/starlette ≤ 1.00")
        target("ws_idle", vs_starlette("ws_idle"), 0.9, "shallot/starlette ≤ 0.90")
    out.append("#### In-process targets")
    out.append(table(["backend", "scenario", "target", "measured", "verdict"], targets))
    return "\n".join(out)


def parse(argv: list[str] | None = None) -> tuple[Settings, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="3 repeats, shorter timings")
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--seconds", type=float, help="seconds per timing measurement")
    parser.add_argument("--idle-connections", type=int)
    parser.add_argument("--idle-seconds", type=float)
    parser.add_argument(
        "--big-idle", type=int, help="shallot connections for the 10k check (0 skips it)"
    )
    parser.add_argument("--backend", choices=BACKENDS, action="append", dest="backends")
    parser.add_argument(
        "--scenario",
        choices=Settings.scenarios,
        action="append",
        dest="scenarios",
        help="routing means 10, 100 and 1,000 routes",
    )
    args = parser.parse_args(argv)
    settings = Settings()
    if args.quick:
        settings = Settings(
            repeats=3,
            seconds=0.1,
            idle_connections=300,
            idle_seconds=1.0,
            big_idle=10_000,
            big_idle_once=True,
        )
    for name in ("repeats", "seconds", "idle_connections", "idle_seconds", "big_idle"):
        if getattr(args, name) is not None:
            setattr(settings, name, getattr(args, name))
    if args.backends:
        settings.backends = tuple(args.backends)
    if args.scenarios:
        settings.scenarios = tuple(args.scenarios)
    if settings.repeats < 1:
        parser.error("--repeats must be at least 1")
    return settings, args


def main(argv: list[str] | None = None) -> int:
    settings, _ = parse(argv)
    print(environment(), flush=True)
    started = time.perf_counter()
    results = measure(settings, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(report(results, settings))
    print(f"\n(in-process total {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
