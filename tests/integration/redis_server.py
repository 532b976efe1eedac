"""A real ``redis-server`` for tests: a free loopback port, no persistence, stopped by its PID.

``running_redis()`` starts Debian's ``redis-server`` (``--port N --save "" --appendonly no``,
then any ``args`` of the test's: ``--dir`` for a ``SAVE`` to restart from, say) and waits
for its "Ready to accept connections" line (no sleep, no polling of the port).
``kill()`` ends it with SIGKILL, as a crash would, and ``start()`` brings it back on the same
port. Where the binary is missing the tests skip and say so, except in CI (``CI`` set), where
``.ci/run`` installs it and a missing server must fail the run instead.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence

import pytest

__all__ = ["RedisServer", "free_port", "redis_binary", "running_redis"]

_READY = b"Ready to accept connections"


def redis_binary() -> str:
    """Returns the path of ``redis-server``; skips the test where it is missing (fails in CI)."""
    path = shutil.which("redis-server")
    if path is None:
        reason = "redis-server is not installed (Debian: apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run the Redis tests (see .ci/run)")
        pytest.skip(reason)
    return path


def free_port() -> int:
    """Returns a loopback port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """One redis-server process on 127.0.0.1: its URL, and ways to crash and restart it."""

    def __init__(self, binary: str, port: int, args: Sequence[str] = ()) -> None:
        self.binary = binary
        self.port = port
        self.args = list(args)
        self.process: subprocess.Popen[bytes] | None = None
        self.output = b""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 10.0) -> None:
        """Starts the server and waits until it accepts connections.

        Raises:
            RuntimeError: it exited, or was not ready within ``timeout`` seconds.
        """
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--loglevel", "notice", *self.args]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while _READY not in self.output:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    self.stop()
                    raise RuntimeError(f"redis-server was not ready in {timeout}s:\n{self.logs}")
                data = os.read(self.process.stdout.fileno(), 65536)
                if not data:
                    self.stop()
                    raise RuntimeError(f"redis-server exited:\n{self.logs}")
                self.output += data
        # The pipe stays open, unread: at this log level the server writes little more.

    @property
    def logs(self) -> str:
        return self.output.decode("utf-8", "replace")

    def kill(self) -> None:
        """Ends the server with SIGKILL, as a crash would, and reaps it."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._close_pipe()

    def stop(self, grace: float = 5.0) -> None:
        """Ends the server with SIGTERM, SIGKILL if it takes longer than ``grace`` seconds."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.kill()
        self._close_pipe()

    def _close_pipe(self) -> None:
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()


@contextlib.contextmanager
def running_redis(attempts: int = 3, args: Sequence[str] = ()) -> Iterator[RedisServer]:
    """Runs a redis-server on a free loopback port for the duration of the block (another
    process may take the port between the probe and the start: then a new port is tried)."""
    binary = redis_binary()
    for attempt in range(attempts):
        server = RedisServer(binary, free_port(), args)
        try:
            server.start()
        except RuntimeError:
            if attempt == attempts - 1:
                raise
            continue
        try:
            yield server
        finally:
            server.stop()
        return
