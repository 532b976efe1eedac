"""Lifespan: on_start/on_stop, the lifespan context, waiting requests, failures (SPEC §2).

``LifespanServer`` plays the server's side of the ASGI lifespan protocol over memory streams;
requests go through ``TestClient(app, lifespan=False)``, so the test drives lifespan itself.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from types import TracebackType
from typing import Any

import anyio
import pytest

from shallot import ASGIProtocolError, build_server
from shallot._types import ASGIApp, Message, Request, Response, Scope
from shallot.response import json
from shallot.testing import TestClient


class LifespanServer:
    """The server's side of the lifespan protocol: runs the app's lifespan in a task."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._to_app_tx, self._to_app_rx = anyio.create_memory_object_stream[Message](math.inf)
        self._from_app_tx, self._from_app_rx = anyio.create_memory_object_stream[Message](math.inf)
        self.scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self.finished = anyio.Event()
        self.failure: BaseException | None = None

    def __enter__(self) -> LifespanServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for stream in (self._to_app_tx, self._to_app_rx, self._from_app_tx, self._from_app_rx):
            stream.close()

    async def run(self) -> None:
        try:
            await self.app(self.scope, self._to_app_rx.receive, self._from_app_tx.send)
        finally:
            self.finished.set()

    async def expect_failure(self, kind: type[BaseException]) -> None:
        """Runs the lifespan, expecting it to raise ``kind`` (kept in ``failure``)."""
        try:
            await self.run()
        except kind as error:
            self.failure = error

    async def begin_startup(self) -> None:
        await self._to_app_tx.send({"type": "lifespan.startup"})

    async def reply(self) -> Message:
        return await self._from_app_rx.receive()

    async def startup(self) -> Message:
        await self.begin_startup()
        return await self.reply()

    async def begin_shutdown(self) -> None:
        await self._to_app_tx.send({"type": "lifespan.shutdown"})

    async def shutdown(self) -> Message:
        await self.begin_shutdown()
        return await self.reply()


async def echo_config(request: Request) -> Response:
    return json(request["config"])


async def get_config(app: ASGIApp) -> tuple[int, Any]:
    async with TestClient(app, lifespan=False) as client:
        response = await client.get("/")
    return response.status_code, response.json() if response.status_code == 200 else None


class _LogWatch(logging.Handler):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.seen = anyio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.seen.set()


@contextmanager
def log_watch(text: str) -> Iterator[anyio.Event]:
    """Yields an event set when the ``shallot`` logger records a message holding ``text``."""
    handler = _LogWatch(text)
    logger = logging.getLogger("shallot")
    logger.addHandler(handler)
    try:
        yield handler.seen
    finally:
        logger.removeHandler(handler)


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "shallot" and r.levelno >= logging.ERROR]


async def test_on_start_config_reaches_requests_and_on_stop_runs_at_shutdown() -> None:
    events: list[Any] = []

    async def on_start(scope: Scope) -> dict[str, Any]:
        events.append(("start", scope["type"]))
        return {"db": "connected"}

    async def on_stop(scope: Scope) -> None:
        events.append(("stop", scope["type"]))

    async def handler(request: Request) -> Response:
        return json(request["config"])

    app = build_server(handler, on_start=on_start, on_stop=on_stop)
    with LifespanServer(app) as server, anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.run)
            assert await server.startup() == {"type": "lifespan.startup.complete"}
            assert await get_config(app) == (200, {"db": "connected"})
            assert events == [("start", "lifespan")]
            assert await server.shutdown() == {"type": "lifespan.shutdown.complete"}
        assert events == [("start", "lifespan"), ("stop", "lifespan")]


async def test_on_start_returning_none_gives_an_empty_config() -> None:
    async def on_start(scope: Scope) -> None:
        return None

    async def handler(request: Request) -> Response:
        return json(request["config"])

    app = build_server(handler, on_start=on_start)
    with LifespanServer(app) as server, anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.run)
            assert await server.startup() == {"type": "lifespan.startup.complete"}
            assert await get_config(app) == (200, {})
            await server.shutdown()


async def test_without_lifespan_requests_proceed_at_once_with_an_empty_config() -> None:
    with anyio.fail_after(5):
        assert await get_config(build_server(echo_config)) == (200, {})


async def test_lifespan_context_spans_startup_to_shutdown_and_yields_config() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def pool() -> AsyncIterator[dict[str, Any]]:
        events.append("open")
        try:
            yield {"pool": "ready"}
        finally:
            events.append("close")

    async def handler(request: Request) -> Response:
        return json(request["config"])

    app = build_server(handler, lifespan=pool)
    with LifespanServer(app) as server, anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.run)
            assert await server.startup() == {"type": "lifespan.startup.complete"}
            assert events == ["open"]
            assert await get_config(app) == (200, {"pool": "ready"})
            assert events == ["open"]
            assert await server.shutdown() == {"type": "lifespan.shutdown.complete"}
            assert events == ["open", "close"]


async def test_lifespan_context_can_run_background_tasks_for_the_apps_life() -> None:
    ticks: list[int] = []
    tick = anyio.Event()

    async def service(task_status: anyio.abc.TaskStatus[None]) -> None:
        task_status.started()
        while True:
            await tick.wait()
            ticks.append(len(ticks))
            await anyio.sleep_forever()

    @asynccontextmanager
    async def background() -> AsyncIterator[None]:
        async with anyio.create_task_group() as tg:
            await tg.start(service)
            yield
            tg.cancel_scope.cancel()

    app = build_server(echo_config, lifespan=background)
    with LifespanServer(app) as server, anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.run)
            assert await server.startup() == {"type": "lifespan.startup.complete"}
            tick.set()
            await anyio.wait_all_tasks_blocked()
            assert ticks == [0]
            assert await server.shutdown() == {"type": "lifespan.shutdown.complete"}


async def test_lifespan_context_and_hooks_together() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def pool() -> AsyncIterator[dict[str, Any]]:
        events.append("enter")
        yield {"pool": 1, "name": "from lifespan"}
        events.append("exit")

    async def on_start(scope: Scope) -> dict[str, Any]:
        events.append("on_start")
        return {"name": "from on_start"}

    async def on_stop(scope: Scope) -> None:
        events.append("on_stop")

    async def handler(request: Request) -> Response:
        return json(request["config"])

    app = build_server(handler, on_start=on_start, on_stop=on_stop, lifespan=pool)
    with LifespanServer(app) as server, anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.run)
            assert await server.startup() == {"type": "lifespan.startup.complete"}
            assert await get_config(app) == (200, {"pool": 1, "name": "from on_start"})
            assert await server.shutdown() == {"type": "lifespan.shutdown.complete"}
    assert events == ["enter", "on_start", "on_stop", "exit"]


async def test_requests_arriving_during_startup_wait_for_it() -> None:
    release = anyio.Event()

    async def on_start(scope: Scope) -> dict[str, Any]:
        await release.wait()
        return {"ready": True}

    handled: list[Any] = []

    async def handler(request: Request) -> Response:
        handled.append(request["config"])
        return json(request["config"])

    async def request(app: ASGIApp) -> None:
        handled.append(await get_config(app))

    app = build_server(handler, on_start=on_start)
    with LifespanServer(app) as server, anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.run)
            await server.begin_startup()
            await anyio.wait_all_tasks_blocked()  # startup is in progress
            tg.start_soon(request, app)
            await anyio.wait_all_tasks_blocked()
            assert handled == []  # the request waits
            release.set()
            assert await server.reply() == {"type": "lifespan.startup.complete"}
            await anyio.wait_all_tasks_blocked()
            assert handled == [{"ready": True}, (200, {"ready": True})]
            await server.shutdown()


@pytest.mark.parametrize("where", ["on_start", "lifespan-enter", "on_start-not-a-dict"])
async def test_startup_failure_is_reported_and_later_requests_get_503(
    where: str, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[str] = []

    @asynccontextmanager
    async def pool() -> AsyncIterator[None]:
        if where == "lifespan-enter":
            raise RuntimeError("database down")
        events.append("enter")
        try:
            yield
        finally:
            events.append("exit")

    async def on_start(scope: Scope) -> Any:
        if where == "on_start":
            raise RuntimeError("database down")
        return "not a dict"

    app = build_server(echo_config, on_start=on_start, lifespan=pool)
    with LifespanServer(app) as server, anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.run)
            reply = await server.startup()
            assert reply["type"] == "lifespan.startup.failed"
            if where == "on_start-not-a-dict":
                assert reply["message"].startswith("TypeError: on_start gave 'not a dict'")
            else:
                assert reply["message"] == "RuntimeError: database down"
            await server.finished.wait()
            status, _ = await get_config(app)
            assert status == 503
    if where != "lifespan-enter":
        assert events == ["enter", "exit"]  # the context was left again
    (record,) = error_records(caplog)
    assert "startup failed" in record.getMessage()


@pytest.mark.parametrize("where", ["on_stop", "lifespan-exit"])
async def test_shutdown_failure_is_reported(where: str, caplog: pytest.LogCaptureFixture) -> None:
    events: list[str] = []

    @asynccontextmanager
    async def pool() -> AsyncIterator[None]:
        try:
            yield
        finally:
            events.append("exit")
        if where == "lifespan-exit":
            raise RuntimeError("flush failed")

    async def on_stop(scope: Scope) -> None:
        if where == "on_stop":
            raise RuntimeError("flush failed")

    app = build_server(echo_config, on_stop=on_stop, lifespan=pool)
    with LifespanServer(app) as server, anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.run)
            assert await server.startup() == {"type": "lifespan.startup.complete"}
            assert await server.shutdown() == {
                "type": "lifespan.shutdown.failed",
                "message": "RuntimeError: flush failed",
            }
    assert events == ["exit"]  # the context is left even when on_stop failed
    (record,) = error_records(caplog)
    assert "shutdown failed" in record.getMessage()


async def test_background_task_failing_mid_life_is_logged_and_reported_at_shutdown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    crash = anyio.Event()

    async def service() -> None:
        await crash.wait()
        raise ValueError("background died")

    @asynccontextmanager
    async def background() -> AsyncIterator[dict[str, Any]]:
        async with anyio.create_task_group() as tg:
            tg.start_soon(service)
            yield {"service": "running"}
            tg.cancel_scope.cancel()

    app = build_server(echo_config, lifespan=background)
    with LifespanServer(app) as server, anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.run)
            assert await server.startup() == {"type": "lifespan.startup.complete"}
            with log_watch("while the app was running") as logged:
                crash.set()
                await logged.wait()
            assert await get_config(app) == (200, {"service": "running"})  # still serving
            assert await server.shutdown() == {
                "type": "lifespan.shutdown.failed",
                "message": "ValueError: background died",
            }
    (record,) = error_records(caplog)
    assert "while the app was running" in record.getMessage()


async def test_server_cancelling_startup_leaves_the_context_and_refuses_requests() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def slow() -> AsyncIterator[None]:
        events.append("enter")
        try:
            await anyio.sleep_forever()
            yield
        finally:
            events.append("exit")

    app = build_server(echo_config, lifespan=slow)
    with LifespanServer(app) as server, anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.run)
            await server.begin_startup()
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
        assert events == ["enter", "exit"]
        status, _ = await get_config(app)
        assert status == 503


async def test_server_cancelling_a_running_app_leaves_the_context() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def pool() -> AsyncIterator[None]:
        events.append("enter")
        try:
            yield
        finally:
            events.append("exit")

    app = build_server(echo_config, lifespan=pool)
    with LifespanServer(app) as server, anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.run)
            assert await server.startup() == {"type": "lifespan.startup.complete"}
            tg.cancel_scope.cancel()
    assert events == ["enter", "exit"]


async def test_lifespan_must_begin_with_startup() -> None:
    app = build_server(echo_config)
    with LifespanServer(app) as server, anyio.fail_after(5):
        await server.begin_shutdown()
        with pytest.raises(ASGIProtocolError, match=r"not lifespan\.startup"):
            await server.run()


async def test_lifespan_must_end_with_shutdown() -> None:
    events: list[str] = []

    @asynccontextmanager
    async def pool() -> AsyncIterator[None]:
        try:
            yield
        finally:
            events.append("exit")

    app = build_server(echo_config, lifespan=pool)
    with LifespanServer(app) as server, anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.expect_failure, ASGIProtocolError)
            assert await server.startup() == {"type": "lifespan.startup.complete"}
            await server.begin_startup()  # a second startup: the server broke the protocol
        assert events == ["exit"]
        assert isinstance(server.failure, ASGIProtocolError)
        assert "expected lifespan.shutdown" in str(server.failure)


async def test_two_apps_in_one_process_are_independent() -> None:
    release_a = anyio.Event()

    async def start_a(scope: Scope) -> dict[str, Any]:
        await release_a.wait()
        raise RuntimeError("a failed")

    async def start_b(scope: Scope) -> dict[str, Any]:
        return {"app": "b"}

    app_a = build_server(echo_config, on_start=start_a)
    app_b = build_server(echo_config, on_start=start_b)
    with LifespanServer(app_a) as server_a, LifespanServer(app_b) as server_b:
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(server_a.run)
                tg.start_soon(server_b.run)
                await server_a.begin_startup()
                await anyio.wait_all_tasks_blocked()  # a's startup is in progress
                assert await server_b.startup() == {"type": "lifespan.startup.complete"}
                assert await get_config(app_b) == (200, {"app": "b"})  # b does not wait for a
                release_a.set()
                assert (await server_a.reply())["type"] == ("lifespan.startup.failed")
                assert (await get_config(app_a))[0] == 503
                assert await get_config(app_b) == (200, {"app": "b"})  # a's failure is a's
                await server_b.shutdown()


async def test_a_second_lifespan_while_the_app_runs_is_refused_and_leaves_the_first_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Two servers running one app would share one life: the first to stop would run on_stop
    # and leave the lifespan context under the other (a second serve for IPv6, say).
    events: list[str] = []

    async def on_start(scope: Scope) -> dict[str, Any]:
        events.append("on_start")
        return {"life": len(events)}

    async def on_stop(scope: Scope) -> None:
        events.append("on_stop")

    app = build_server(echo_config, on_start=on_start, on_stop=on_stop)
    with LifespanServer(app) as first, LifespanServer(app) as second, anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(first.run)
            assert await first.startup() == {"type": "lifespan.startup.complete"}
            tg.start_soon(second.run)
            reply = await second.startup()
            assert reply["type"] == "lifespan.startup.failed"
            assert reply["message"].startswith("this app is already running under another server")
            await second.finished.wait()
            assert await get_config(app) == (200, {"life": 1})  # the first life goes on
            assert await first.shutdown() == {"type": "lifespan.shutdown.complete"}
        with LifespanServer(app) as third:  # once it has ended, the app may run again
            async with anyio.create_task_group() as tg:
                tg.start_soon(third.run)
                assert await third.startup() == {"type": "lifespan.startup.complete"}
                assert await get_config(app) == (200, {"life": 3})
                await third.shutdown()
    assert events == ["on_start", "on_stop", "on_start", "on_stop"]
    (record,) = error_records(caplog)
    assert "already running under another server" in record.getMessage()
