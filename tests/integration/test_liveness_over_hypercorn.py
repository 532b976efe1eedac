"""The hypercorn command's kernel bound, with the launcher that docs/deployment.md gives
(issues 13 and 14).

hypercorn has no option for ``TCP_USER_TIMEOUT``; the documented launcher binds the socket,
sets it, and execs ``hypercorn --bind fd://N``. Run as written (taken from the page), with a
1 s bound, on each worker class: a client that stops reading while the app pushes is dropped
by the kernel, and ``on_close`` runs, although shallot's own ``send_timeout`` is 60 s.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from ..test_serve_sockets import MARGIN, deaf_client, websocket_request
from .server import REPO_ROOT, HypercornServer, run_hypercorn

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="TCP_USER_TIMEOUT: Linux"),
]

BOUND = 1.0


def launcher_from_the_docs(folder: Path) -> Path:
    page = (REPO_ROOT / "docs" / "deployment.md").read_text()
    [source] = [
        block
        for block in re.findall(r"^```python\n(.*?)^```$", page, re.MULTILINE | re.DOTALL)
        if block.startswith('"""hypercorn_bounded.py')
    ]
    path = folder / "hypercorn_bounded.py"
    path.write_text(source)
    return path


@pytest.fixture(scope="module")
async def bounded_server(
    worker_class: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[HypercornServer]:
    launcher = launcher_from_the_docs(tmp_path_factory.mktemp("launcher"))
    env = {
        "HOST": "127.0.0.1",
        "PORT": "0",
        "TCP_USER_TIMEOUT_MS": str(int(BOUND * 1000)),
        # the launcher execs "hypercorn": the one installed beside this Python
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    async with run_hypercorn(
        "tests.integration.liveness_app:app",
        worker_class=worker_class,
        env=env,
        launcher=[sys.executable, str(launcher)],
    ) as server:
        yield server


async def test_a_client_that_stops_reading_is_dropped_under_the_command(
    bounded_server: HypercornServer,
) -> None:
    with anyio.fail_after(BOUND + MARGIN + 5):
        started = anyio.current_time()
        async with await deaf_client(bounded_server.port, websocket_request("/push")):
            await bounded_server.wait_for_log("on_close /push")
            took = anyio.current_time() - started
    assert took < BOUND + MARGIN
