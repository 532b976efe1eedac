"""End-to-end benchmarks: each contender served by hypercorn on 127.0.0.1, real sockets.

For each hypercorn worker class (``asyncio``, ``trio``) and each scenario (``plain``,
``routing`` with 100 routes, ``ws_echo``), one server per contender is started in its own
process (``python benchmarks/e2e.py serve ...``: ``hypercorn.asyncio.serve`` or
``hypercorn.trio.serve``, the function hypercorn's worker of that class runs) on a listening
socket this script bound to 127.0.0.1 port 0 and passed down (``fd://``), so no fixed port.
Every contender is validated (status, content-type, body; a websocket echo) after it starts and
after its last measurement. Then, repeated and interleaved (the order rotates each repeat):

- HTTP: ``wrk -t<threads> -c<connections> -d<seconds>s`` against the scenario's path:
  requests per second, and the server's CPU time per request, read from
  ``/proc/<pid>/stat`` (utime + stime of the server process and any descendants) before and
  after the run. Any non-2xx answer or socket error fails the run. In the same run, the app's
  own time per request inside the server (wall time minus its awaits of ``send`` and
  ``receive``, one request in four sampled over the whole run; ``apptime.py``), the number
  that sees microseconds where wrk's ratio cannot.
- ``ws_echo``: a load client built on the ``websockets`` library, in this process: N
  connections, each doing strict ping-pong (send, wait for the echo, check it, repeat) for T
  seconds, bounded in count too: messages per second and server CPU per message. The client's
  own CPU is reported as well: when it is near 100 % the client, not the server, sets the rate.

Requires ``wrk`` (Debian: ``apt-get install -y wrk``); without it the HTTP part is skipped.

Run: ``.venv/bin/python benchmarks/e2e.py [--quick]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial

import anyio
from apps import (
    CONTENDERS,
    PLAIN_PATH,
    WS_PATH,
    build,
    expected,
    routing_path,
)
from apptime import Probe, summary
from common import DASH, cell, environment, interleaved, median, ratio, table, verdict

WORKERS = ("asyncio", "trio")
ROUTES = 100
HTTP_SCENARIOS = {"plain": PLAIN_PATH, "routing": routing_path(ROUTES)}
SCENARIOS = ("plain", "routing", "ws_echo")
_TICKS = os.sysconf("SC_CLK_TCK")
_INSTALL_WRK = "wrk is not installed; install it with: apt-get install -y wrk"


@dataclass
class Settings:
    repeats: int = 5
    seconds: float = 3.0
    warmup: float = 1.0
    threads: int = 2
    connections: int = 50
    ws_connections: int = 50
    max_messages: int = 10_000_000  # per websocket connection and run: the count bound
    workers: tuple[str, ...] = WORKERS
    scenarios: tuple[str, ...] = SCENARIOS
    pin: bool = True  # server on the last CPU, load generator on the others


def cpu_split() -> tuple[set[int], set[int]] | None:
    """Returns (server CPUs, load-generator CPUs), or None on a single CPU. Pinning keeps the
    server and the load generator from trading places on a 2-CPU machine, which is most of the
    run-to-run noise there."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None
    return {cpus[-1]}, set(cpus[:-1])


@dataclass
class Run:
    rate: float  # requests or messages per second
    cpu_per_op_us: float  # server CPU µs per request or message
    server_cpu: float  # server CPU seconds / wall seconds
    client_cpu: float = float("nan")  # load client CPU seconds / wall seconds (websockets)
    app_us: float = float("nan")  # median app time per request inside the server (HTTP)
    app_mean_us: float = float("nan")  # mean of the same samples


@dataclass
class Results:
    runs: dict[tuple[str, str, str], list[Run]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def add(self, worker: str, scenario: str, contender: str, run: Run) -> None:
        self.runs.setdefault((worker, scenario, contender), []).append(run)

    def get(self, worker: str, scenario: str, contender: str) -> list[Run]:
        return self.runs.get((worker, scenario, contender), [])


# -- the server process ---------------------------------------------------------------------------


def serve(worker: str, contender: str, scenario: str, fd: int, probe: str = "") -> None:
    """Serves one contender with hypercorn on the inherited listening socket ``fd``, timing
    its HTTP requests into the ``apptime`` ring at ``probe`` when one is named."""
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"fd://{fd}"]
    config.accesslog = None
    config.loglevel = "WARNING"
    config.backlog = 1024
    app = build(contender, "ws" if scenario == "ws_echo" else scenario, ROUTES)
    if probe:
        app = Probe(probe).wrap(app)
    if worker == "asyncio":
        from hypercorn.asyncio import serve as asyncio_serve

        asyncio.run(asyncio_serve(app, config))  # type: ignore[arg-type]
    else:
        import trio
        from hypercorn.trio import serve as trio_serve

        trio.run(partial(trio_serve, app, config))  # type: ignore[arg-type]


class Server:
    """One contender served in a child process on an ephemeral 127.0.0.1 port."""

    def __init__(
        self, worker: str, contender: str, scenario: str, cpus: set[int] | None = None
    ) -> None:
        self.worker, self.contender, self.scenario = worker, contender, scenario
        self.probe = Probe()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            listener.bind(("127.0.0.1", 0))
            listener.listen(1024)
            self.port: int = listener.getsockname()[1]
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    os.path.abspath(__file__),
                    "serve",
                    worker,
                    contender,
                    scenario,
                    str(listener.fileno()),
                    self.probe.path,
                ],
                pass_fds=(listener.fileno(),),
            )
            if cpus:
                os.sched_setaffinity(self.process.pid, cpus)
        finally:
            listener.close()  # the child holds its own copy

    def __repr__(self) -> str:
        return f"<{self.contender} {self.scenario} on hypercorn {self.worker} :{self.port}>"

    def cpu_seconds(self) -> float:
        """Returns the CPU time (user + system) of the server process and its descendants."""
        total = 0
        for pid in _family(self.process.pid):
            try:
                with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime (proc(5) fields 14, 15)
        return total / _TICKS

    def check(self, deadline: float = 20.0) -> None:
        """Validates the contender's answer, waiting (bounded) for the server to come up."""
        give_up = time.monotonic() + deadline
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self!r} exited with {self.process.returncode}")
            try:
                if self.scenario == "ws_echo":
                    _check_ws(self.port)
                else:
                    _check_http(self.port, self.scenario)
                return
            except (ConnectionError, OSError):
                if time.monotonic() > give_up:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.probe.close()


def _family(pid: int) -> list[int]:
    """Returns ``pid`` and its descendants (hypercorn's worker children, if it has any)."""
    found = [pid]
    for parent in found:
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{parent}/task/{tid}/children", encoding="ascii") as children:
                    found += [int(child) for child in children.read().split()]
            except OSError:
                continue
    return found


def _check_http(port: int, scenario: str) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", HTTP_SCENARIOS[scenario])
        response = connection.getresponse()
        got = (response.status, response.getheader("content-type", ""), response.read())
    finally:
        connection.close()
    if got != expected(scenario):
        raise AssertionError(f"{scenario} answered {got!r}, not {expected(scenario)!r}")


def _check_ws(port: int) -> None:
    from websockets.sync.client import connect

    with connect(
        f"ws://127.0.0.1:{port}{WS_PATH}",
        compression=None,
        proxy=None,
        open_timeout=5,
        close_timeout=5,
    ) as websocket:
        for text in ("check", "second ✓"):
            websocket.send(text)
            reply = websocket.recv(timeout=5)
            if reply != text:
                raise AssertionError(f"echo of {text!r} came back as {reply!r}")


@contextlib.contextmanager
def servers(worker: str, scenario: str, cpus: set[int] | None) -> Iterator[dict[str, Server]]:
    """Starts one server per contender, validated; stops them all on exit."""
    started: dict[str, Server] = {}
    try:
        for contender in CONTENDERS:
            started[contender] = Server(worker, contender, scenario, cpus)
        for server in started.values():
            server.check()
        yield started
    finally:
        for server in started.values():
            server.stop()


# -- load generators --------------------------------------------------------------------------


def run_wrk(server: Server, settings: Settings, seconds: float) -> Run:
    url = f"http://127.0.0.1:{server.port}{HTTP_SCENARIOS[server.scenario]}"
    command = [
        "wrk",
        f"-t{settings.threads}",
        f"-c{settings.connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        url,
    ]
    mark = server.probe.mark()
    cpu_before, wall_before = server.cpu_seconds(), time.monotonic()
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    wall = time.monotonic() - wall_before
    cpu = server.cpu_seconds() - cpu_before
    output = done.stdout
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed on {server!r}: {done.stderr or output}")
    total = re.search(r"(\d+) requests in", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if total is None or rate is None:
        raise RuntimeError(f"cannot read wrk's output for {server!r}:\n{output}")
    for problem in ("Non-2xx or 3xx responses", "Socket errors"):
        if problem in output:
            raise RuntimeError(f"{server!r}: {problem} under load:\n{output}")
    requests = int(total.group(1))
    app_median, app_mean = summary(server.probe.since(mark))
    return Run(
        float(rate.group(1)),
        cpu / requests * 1e6,
        cpu / wall,
        app_us=app_median,
        app_mean_us=app_mean,
    )


async def _ws_load(server: Server, settings: Settings, seconds: float) -> Run:
    from websockets.asyncio.client import ClientConnection, connect

    uri = f"ws://127.0.0.1:{server.port}{WS_PATH}"

    async def open_one() -> ClientConnection:
        return await connect(
            uri, compression=None, proxy=None, ping_interval=None, open_timeout=10, close_timeout=5
        )

    async def ping_pong(websocket: ClientConnection, index: int, deadline: float) -> int:
        text = f"ping from connection {index:04d}"
        count = 0
        loop = asyncio.get_running_loop()
        while count < settings.max_messages and loop.time() < deadline:
            await websocket.send(text)
            reply = await websocket.recv()
            if reply != text:
                raise AssertionError(f"{server!r} echoed {reply!r} for {text!r}")
            count += 1
        return count

    with anyio.fail_after(seconds + 60):  # the watchdog: no run outlives its bound
        websockets = await asyncio.gather(*(open_one() for _ in range(settings.ws_connections)))
        try:
            loop = asyncio.get_running_loop()
            cpu_before, client_before = server.cpu_seconds(), time.process_time()
            start = loop.time()
            counts = await asyncio.gather(
                *(ping_pong(ws, index, start + seconds) for index, ws in enumerate(websockets))
            )
            wall = loop.time() - start
            client = time.process_time() - client_before
            cpu = server.cpu_seconds() - cpu_before
        finally:
            await asyncio.gather(*(ws.close() for ws in websockets), return_exceptions=True)
    messages = sum(counts)
    return Run(messages / wall, cpu / messages * 1e6, cpu / wall, client / wall)


def run_ws(server: Server, settings: Settings, seconds: float) -> Run:
    return anyio.run(_ws_load, server, settings, seconds, backend="asyncio")


# -- the run --------------------------------------------------------------------------------------


def measure(settings: Settings, log: Callable[[str], None] = print) -> Results:
    results = Results()
    have_wrk = shutil.which("wrk") is not None
    split = cpu_split() if settings.pin else None
    server_cpus, client_cpus = split or (None, None)
    own_cpus = os.sched_getaffinity(0)
    if client_cpus:  # the websocket client runs here; wrk inherits it
        os.sched_setaffinity(0, client_cpus)
    try:
        _measure(settings, results, have_wrk, server_cpus, log)
    finally:
        os.sched_setaffinity(0, own_cpus)
    return results


def _measure(
    settings: Settings,
    results: Results,
    have_wrk: bool,
    server_cpus: set[int] | None,
    log: Callable[[str], None],
) -> None:
    for worker in settings.workers:
        for scenario in settings.scenarios:
            if scenario != "ws_echo" and not have_wrk:
                log(_INSTALL_WRK)
                results.skipped.append(f"{worker} {scenario}: {_INSTALL_WRK}")
                continue
            load: Callable[[Server, Settings, float], Run] = (
                run_ws if scenario == "ws_echo" else run_wrk
            )
            started = time.monotonic()
            with servers(worker, scenario, server_cpus) as running:
                if settings.warmup > 0:
                    for contender in CONTENDERS:
                        load(running[contender], settings, settings.warmup)
                for repeat in range(settings.repeats):
                    for contender in interleaved(CONTENDERS, repeat):
                        results.add(
                            worker,
                            scenario,
                            contender,
                            load(running[contender], settings, settings.seconds),
                        )
                for server in running.values():
                    server.check()
            log(
                f"  e2e hypercorn-{worker} {scenario}: {settings.repeats} repeats "
                f"({time.monotonic() - started:.0f} s)"
            )


def report(results: Results, settings: Settings) -> str:
    out: list[str] = []
    targets: list[list[str]] = []
    app_rows: list[list[str]] = []
    for worker in settings.workers:
        rows = []
        for scenario in settings.scenarios:
            runs = [results.get(worker, scenario, contender) for contender in CONTENDERS]
            if not any(runs):
                continue
            unit = "msg" if scenario == "ws_echo" else "req"
            rates = [[run.rate for run in r] for r in runs]
            cpus = [[run.cpu_per_op_us for run in r] for r in runs]
            loads = [[run.server_cpu * 100 for run in r] for r in runs]
            name = f"routing{ROUTES}" if scenario == "routing" else scenario
            rows.append(
                [
                    name,
                    f"{unit}/s",
                    *(cell(r, 0) for r in rates),
                    f"{ratio(rates[1], rates[0]):.3f}",
                    f"{ratio(rates[2], rates[0]):.3f}",
                ]
            )
            rows.append(
                [
                    name,
                    f"server CPU µs/{unit}",
                    *(cell(c, 1) for c in cpus),
                    f"{ratio(cpus[1], cpus[0]):.2f}",
                    f"{ratio(cpus[2], cpus[0]):.2f}",
                ]
            )
            rows.append([name, "server CPU %", *(cell(load, 0) for load in loads), "", ""])
            if scenario != "ws_echo":
                medians = [[run.app_us for run in r] for r in runs]
                means = [[run.app_mean_us for run in r] for r in runs]
                for label, values in (("median", medians), ("mean", means)):
                    rows.append(
                        [
                            name,
                            f"app µs/req in server ({label})",
                            *(cell(v, 2) for v in values),
                            f"{ratio(values[1], values[0]):.2f}",
                            f"{ratio(values[2], values[0]):.2f}",
                        ]
                    )
                app_rows.append(_app_row(worker, name, medians, means))
            if scenario == "ws_echo":
                clients = [[run.client_cpu * 100 for run in r] for r in runs]
                rows.append([name, "client CPU %", *(cell(c, 0) for c in clients), "", ""])
            limit = 0.97 if scenario == "ws_echo" else 0.95
            value = ratio(rates[1], rates[0])
            # The rate a saturated server would reach is 1 / CPU per request: the same ratio,
            # read from server CPU, which other load on a shared machine disturbs far less.
            capacity = ratio(cpus[0], cpus[1])
            targets.append(
                [
                    f"hypercorn-{worker}",
                    name,
                    f"shallot/raw {unit}/s ≥ {limit:.2f}",
                    f"{value:.3f}",
                    verdict(value, limit, at_most=False),
                    f"{capacity:.3f}",
                    verdict(capacity, limit, at_most=False),
                ]
            )
        if rows:
            out.append(
                f"#### End to end, hypercorn {worker} worker ({settings.repeats} repeats "
                f"of {settings.seconds:g} s, median (min{DASH}max))"
            )
            out.append(
                table(
                    [
                        "scenario",
                        "measure",
                        "raw",
                        "shallot",
                        "starlette",
                        "shallot/raw",
                        "starlette/raw",
                    ],
                    rows,
                )
            )
            out.append("")
    split = cpu_split() if settings.pin else None
    pinning = (
        f"server pinned to CPU {sorted(split[0])}, load generator to CPU {sorted(split[1])}"
        if split
        else "no CPU pinning"
    )
    out.append(
        f"wrk: {settings.threads} threads, {settings.connections} connections; websocket "
        f"client: {settings.ws_connections} connections in one asyncio process "
        f"(websockets library, no compression), strict ping-pong; {pinning}.\n"
    )
    if app_rows:
        out.append("#### App time per request inside the server (apptime.py)")
        out.append(
            table(
                [
                    "server",
                    "scenario",
                    "raw µs",
                    "shallot µs",
                    "starlette µs",
                    f"shallot {_MINUS} raw (median)",
                    f"shallot {_MINUS} raw (mean)",
                    "shallot/starlette",
                    f"target: shallot {_MINUS} raw ≤ {APP_TARGET_US:g} µs",
                ],
                app_rows,
            )
        )
        out.append(
            "\nMedians over the run's repeats of each run's median (mean) of the sampled "
            "requests (one in four); the probe's own cost is in every column, so the raw "
            "column is the floor and the difference is the framework's own work.\n"
        )
    if targets:
        out.append("#### End-to-end targets")
        out.append(
            table(
                [
                    "server",
                    "scenario",
                    "target",
                    "measured rate ratio",
                    "verdict",
                    "by server CPU (raw µs / shallot µs)",
                    "verdict",
                ],
                targets,
            )
        )
        out.append(
            "\nThe rate ratio is the target as the issue states it; when a server was not "
            "saturated (server CPU % well under 100) it measures latency and the machine's "
            "other load more than the app. The CPU ratio is what the rates would be at "
            "saturation."
        )
    out += [f"skipped: {line}" for line in results.skipped]
    return "\n".join(out)


#: In-server app time target (issue 18): shallot minus raw per plain request.
APP_TARGET_US = 4.0
_MINUS = "\u2212"


def _app_row(
    worker: str, name: str, medians: list[list[float]], means: list[list[float]]
) -> list[str]:
    raw, shallot, starlette = (median(values) for values in medians)
    by_median = shallot - raw
    by_mean = median(means[1]) - median(means[0])
    return [
        f"hypercorn-{worker}",
        name,
        f"{raw:.2f}",
        f"{shallot:.2f}",
        f"{starlette:.2f}",
        f"{by_median:.2f}",
        f"{by_mean:.2f}",
        f"{shallot / starlette:.2f}",
        verdict(by_median, APP_TARGET_US) if name == "plain" else "",
    ]


def parse(argv: list[str] | None = None) -> Settings:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="3 repeats of 1 s")
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--seconds", type=float, help="seconds per load run")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up per server (0: none)")
    parser.add_argument("--threads", type=int, help="wrk threads")
    parser.add_argument("--connections", type=int, help="wrk connections")
    parser.add_argument("--ws-connections", type=int, help="websocket client connections")
    parser.add_argument("--worker", choices=WORKERS, action="append", dest="workers")
    parser.add_argument("--scenario", choices=SCENARIOS, action="append", dest="scenarios")
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="do not pin the server and the load generator to separate CPUs",
    )
    args = parser.parse_args(argv)
    settings = Settings()
    if args.quick:
        settings = Settings(repeats=3, seconds=1.0, warmup=0.0)
    for name in ("repeats", "seconds", "warmup", "threads", "connections", "ws_connections"):
        if getattr(args, name) is not None:
            setattr(settings, name, getattr(args, name))
    settings.pin = not args.no_pin
    if args.workers:
        settings.workers = tuple(args.workers)
    if args.scenarios:
        settings.scenarios = tuple(args.scenarios)
    if settings.repeats < 1 or settings.seconds <= 0:
        parser.error("--repeats must be at least 1 and --seconds positive")
    return settings


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        worker, contender, scenario, fd, *probe = argv[1:6]
        serve(worker, contender, scenario, int(fd), *probe)
        return 0
    settings = parse(argv)
    if shutil.which("wrk") is None:
        print(_INSTALL_WRK, file=sys.stderr)
    print(environment(), flush=True)
    started = time.monotonic()
    results = measure(settings, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(report(results, settings))
    print(f"\n(end-to-end total {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
