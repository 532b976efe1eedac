"""Integration fixtures: hypercorn with each worker class, the client on the matching backend.

``anyio_backend`` is module-scoped here and doubles as the worker class, so each test runs
twice (asyncio client against ``--worker-class asyncio``, trio client against
``--worker-class trio``), not four times, and one server per worker class serves a module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from .server import HypercornServer, run_hypercorn


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def worker_class(anyio_backend: str) -> str:
    """hypercorn's ``--worker-class``, the same as the client's backend."""
    return anyio_backend


@pytest.fixture(scope="module")
async def core_server(worker_class: str) -> AsyncIterator[HypercornServer]:
    async with run_hypercorn("tests.integration.apps:core_app", worker_class=worker_class) as s:
        yield s


@pytest.fixture(scope="module")
async def limits_server(worker_class: str) -> AsyncIterator[HypercornServer]:
    async with run_hypercorn("tests.integration.apps:limits_app", worker_class=worker_class) as s:
        yield s


@pytest.fixture
async def client(core_server: HypercornServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=core_server.url, timeout=10) as c:
        yield c
