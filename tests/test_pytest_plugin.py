"""``shallot.pytest_plugin`` and the one pytest setup docs/testing.md gives for running
pytest-trio tests beside anyio tests (issue 16), checked by running pytest on a small project
of its own: the ``client`` fixture serves each anyio test on asyncio and on trio, and a
``@pytest.mark.trio`` test runs once, with pytest-trio's ``autojump_clock``."""

from __future__ import annotations

import textwrap

import pytest

pytestmark = pytest.mark.slow  # a pytest run in a subprocess

CONFTEST = """
import anyio
import pytest

from shallot import build_server, standard_not_found, websocket, ws_send
from shallot.middlewares import apply_middleware, wrap_routes
from shallot.response import text


async def home(request):
    return text("home")


@websocket
async def patient(scope, receiver):
    while True:
        message = None
        with anyio.move_on_after(30):
            message = await receiver.receive()
        yield ws_send("still there?" if message is None else f"you said {message}")


APP = build_server(
    apply_middleware(wrap_routes([("/", ["GET"], home), ("/patient", ["WS"], patient)]))(
        standard_not_found
    )
)


@pytest.fixture
def app():
    return APP
"""

TEST_ANYIO = """
import pytest

pytestmark = pytest.mark.anyio  # anyio's plugin runs this module's tests, on each backend


async def test_home(client, anyio_backend_name):
    response = await client.get("/")
    assert response.text == "home"
    print(f"served on {anyio_backend_name}")
"""

TEST_TRIO = """
import pytest
import trio

from conftest import APP
from shallot.testing import TestClient


@pytest.mark.trio
async def test_nudges_after_30_idle_seconds(autojump_clock):
    start = trio.current_time()
    async with TestClient(APP) as client, client.websocket("/patient") as ws:
        ws.receive_timeout = None  # the clock jumps: let it go past 30 s
        assert await ws.receive() == "still there?"
    assert trio.current_time() - start >= 30
    print("ran on pytest-trio")
"""


def test_anyio_tests_run_on_both_backends_and_trio_tests_once(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        textwrap.dedent(
            """
            [pytest]
            addopts = --strict-markers
            filterwarnings = error
            """
        )
    )
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_web=TEST_ANYIO, test_patience=TEST_TRIO)
    result = pytester.runpytest_subprocess("-v", "-s", "-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines_random(
        [
            "*test_web.py::test_home[[]asyncio[]] served on asyncio*",
            "*test_web.py::test_home[[]trio[]] served on trio*",
            "*test_patience.py::test_nudges_after_30_idle_seconds ran on pytest-trio*",
        ]
    )
