"""Runs hypercorn in a subprocess for integration tests.

``run_hypercorn(app_path, worker_class=...)`` starts ``python -m hypercorn`` on an ephemeral
port of 127.0.0.1, reads the port from its "Running on" line (no fixed port, no sleep), drains
its stderr and stdout into ``server.logs`` for the whole run, and on exit interrupts it with
SIGINT, as Ctrl+C would, killing it only when it does not stop in time.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc

__all__ = ["HypercornServer", "run_hypercorn"]

#: The repository root: hypercorn imports ``tests.integration.apps`` from here.
REPO_ROOT = Path(__file__).resolve().parents[2]

_RUNNING = re.compile(r"Running on http://127\.0\.0\.1:(\d+)")


class HypercornServer:
    """One hypercorn process: its address, its output so far, and ways to stop it."""

    def __init__(self, process: anyio.abc.Process, worker_class: str) -> None:
        self.process = process
        self.worker_class = worker_class
        self.port = 0
        self._output = bytearray()
        self._open_pipes = 2  # stderr and stdout, until each is drained to its end
        self._changed = anyio.Event()

    @property
    def pid(self) -> int:
        """The process id of hypercorn (its supervisor, which runs the worker)."""
        return self.process.pid

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def logs(self) -> str:
        """Everything hypercorn and the app wrote to stderr and stdout so far."""
        return self._output.decode("utf-8", "replace")

    @property
    def returncode(self) -> int | None:
        """The exit status, or None while hypercorn runs."""
        return self.process.returncode

    def interrupt(self) -> None:
        """Sends SIGINT, which starts hypercorn's graceful shutdown."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)

    async def wait_for_log(self, text: str, count: int = 1) -> None:
        """Waits until ``text`` appears in the logs ``count`` times (bound it with
        ``anyio.fail_after``).

        Raises:
            RuntimeError: hypercorn closed its output without writing ``text``.
        """
        while self.logs.count(text) < count:
            if self._open_pipes == 0:
                raise RuntimeError(f"hypercorn ended without logging {text!r}:\n{self.logs}")
            await self._changed.wait()

    async def stop(self, grace: float = 10.0) -> int:
        """Interrupts hypercorn and waits for it to exit and its output to end; kills it if
        it takes longer than ``grace`` seconds. Returns its exit status."""
        self.interrupt()
        with anyio.move_on_after(grace):
            await self.process.wait()
        if self.process.returncode is None:
            # hypercorn serves from a worker process it supervises: kill the whole group
            # (the process was started in a session of its own, so the group is its pid).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            await self.process.wait()
        with anyio.move_on_after(grace):  # the output ends when the pipes close
            while self._open_pipes:
                await self._changed.wait()
        assert self.process.returncode is not None
        return self.process.returncode

    async def _drain(self, stream: anyio.abc.ByteReceiveStream) -> None:
        try:
            async for data in stream:
                self._output += data
                self._notify()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass
        finally:
            self._open_pipes -= 1
            self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def _wait_for_port(self) -> None:
        while (match := _RUNNING.search(self.logs)) is None:
            if self._open_pipes == 0:
                raise RuntimeError(f"hypercorn exited before serving:\n{self.logs}")
            await self._changed.wait()
        self.port = int(match.group(1))


@asynccontextmanager
async def run_hypercorn(
    app_path: str,
    *,
    worker_class: str = "asyncio",
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    startup_timeout: float = 20.0,
    launcher: Sequence[str] = (),
) -> AsyncIterator[HypercornServer]:
    """Serves ``app_path`` ("module:attribute") with ``hypercorn --worker-class worker_class``
    on 127.0.0.1 and an ephemeral port, for the duration of the block. ``extra_args`` go on
    hypercorn's command line (``["--workers", "2"]``), ``env`` into its environment. A
    ``launcher`` (``[python, "launcher.py"]``) starts hypercorn instead and binds for it.

    Raises:
        RuntimeError: hypercorn exited before it served.
        TimeoutError: it did not report its port within ``startup_timeout`` seconds.
    """
    start = list(launcher) or [sys.executable, "-m", "hypercorn", "--bind", "127.0.0.1:0"]
    command = [*start, "--worker-class", worker_class, *extra_args, app_path]
    process = await anyio.open_process(
        command,
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl+C meant for pytest is not also hypercorn's
    )
    server = HypercornServer(process, worker_class)
    assert process.stderr is not None
    assert process.stdout is not None
    try:
        async with process, anyio.create_task_group() as tg:
            tg.start_soon(server._drain, process.stderr)
            tg.start_soon(server._drain, process.stdout)
            try:
                with anyio.fail_after(startup_timeout):
                    await server._wait_for_port()
                yield server
            finally:
                with anyio.CancelScope(shield=True):
                    await server.stop()
    except BaseException as error:
        # The task group wraps the test's own failure; hand the test its AssertionError.
        inner = getattr(error, "exceptions", None)
        if isinstance(inner, tuple) and len(inner) == 1:
            raise inner[0] from None
        raise
