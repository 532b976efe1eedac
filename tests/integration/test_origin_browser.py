"""The websocket Origin check in a real browser: headless Chromium, driven by Playwright
(issue 14).

The demo app runs on hypercorn (each worker class); a second server, on a second port, serves
a page that tries to open the demo's websocket, as a page of another site would with the
user's cookies. Chromium sends that page's origin, the demo refuses the handshake with 403,
and the page sees only a failed connection; the demo's own page opens its websocket and gets
its echo. Fixtures and Chromium's settings are the chat test's (never ``playwright install``).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import anyio
import pytest

from shallot import build_server, serve
from shallot._types import Request, Response
from shallot.response import text

from .server import HypercornServer, run_hypercorn
from .test_chat_browser import (  # noqa: F401  (fixtures, used by name)
    TIMEOUT_MS,
    anyio_backend,
    browser,
    worker_class,
)

if TYPE_CHECKING:
    from playwright.async_api import Browser

pytestmark = pytest.mark.slow

FOREIGN_PAGE = """<!doctype html>
<meta charset="utf-8">
<title>another site</title>
<p id="status">connecting</p>
<script>
const status = document.getElementById("status");
const socket = new WebSocket("ws://127.0.0.1:%d/echo");
socket.onopen = () => { status.textContent = "open"; };
socket.onclose = (event) => { status.textContent = `closed with ${event.code}`; };
</script>
"""


@pytest.fixture(scope="module")
async def demo_server(worker_class: str) -> AsyncIterator[HypercornServer]:  # noqa: F811
    async with run_hypercorn("examples.demo:app", worker_class=worker_class) as server:
        yield server


async def test_a_page_of_another_origin_cannot_open_the_demos_websocket(
    browser: Browser,  # noqa: F811
    demo_server: HypercornServer,
) -> None:
    from playwright.async_api import expect

    async def foreign_page(request: Request) -> Response:
        page = FOREIGN_PAGE % demo_server.port
        return text(page, headers={"content-type": "text/html; charset=utf-8"})

    console: list[str] = []
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            _, port = await tg.start(functools.partial(serve, build_server(foreign_page), port=0))
            context = await browser.new_context()
            context.set_default_timeout(TIMEOUT_MS)
            try:
                page = await context.new_page()
                page.on("console", lambda message: console.append(message.text))
                await page.goto(f"http://127.0.0.1:{port}/")
                await expect(page.locator("#status")).to_have_text(
                    "closed with 1006", timeout=TIMEOUT_MS
                )
                # The demo's own page, in the same browser, opens its websocket.
                own = await context.new_page()
                await own.goto(f"{demo_server.url}/")
                await own.fill("#message", "hello")
                await own.press("#message", "Enter")
                await expect(own.locator("#log")).to_contain_text(
                    "@ECHO: hello", timeout=TIMEOUT_MS
                )
            finally:
                await context.close()
            tg.cancel_scope.cancel()
    assert any("403" in line for line in console), console
