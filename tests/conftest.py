"""The backend matrix: every async test runs on asyncio and on trio. And the brokers of the
broadcast tests: ``hub_url`` is None (in memory) and a real ``redis-server``'s URL, which
``redis`` starts once per test module (see ``integration/redis_server.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .integration.redis_server import RedisServer, running_redis

pytest_plugins = ["pytester"]  # tests/test_pytest_plugin.py runs pytest on a project of its own


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


@pytest.fixture(params=["memory", "redis"])
def hub_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "memory":
        return None
    server: RedisServer = request.getfixturevalue("redis")
    return server.url
