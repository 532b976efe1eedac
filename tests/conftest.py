"""The backend matrix: every async test runs on asyncio and on trio."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]  # tests/test_pytest_plugin.py runs pytest on a project of its own


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
