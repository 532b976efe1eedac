"""shallot's pytest plugin: a ``client`` fixture, loaded by pytest through the ``pytest11``
entry point whenever shallot is installed.

``client`` is a ``shallot.testing.TestClient`` around the project's ``app`` fixture, entered
(lifespan started) for the length of one test. It runs under anyio's pytest plugin, on every
backend of the ``anyio_backend`` fixture: asyncio and trio where both are installed.

```python
@pytest.fixture
def app():
    return build_server(handler)


async def test_home(client):
    assert (await client.get("/")).status_code == 200
```
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

from ._types import ASGIApp

if TYPE_CHECKING:
    from .testing import TestClient

__all__ = ["client"]


@pytest.fixture
async def client(app: ASGIApp, anyio_backend: Any) -> AsyncIterator[TestClient]:
    """A ``TestClient`` of the ``app`` fixture (which the project defines), entered for one
    test, on the test's anyio backend."""
    # Imported here: pytest loads this plugin wherever shallot is installed, httpx or not.
    from .testing import TestClient

    async with TestClient(app) as test_client:
        yield test_client
