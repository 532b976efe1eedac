"""The chat demo in a real browser: headless Chromium, driven by Playwright (issue 7).

Debian's ``chromium`` (``/usr/bin/chromium``) runs the page; Playwright only drives it, and
downloads nothing (never ``playwright install``). Two pages, each in a browser context of its
own, join one room with different nicknames, and each sees what the other typed. Playwright is
asyncio-only, so these tests run on asyncio; hypercorn's worker class is the parameter. Where
Chromium or Playwright is missing the tests skip and say so, except in CI (``CI`` set), where
``.ci/run`` installs them and a missing one must fail the run instead.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, NoReturn

import anyio
import pytest

from .server import HypercornServer, run_hypercorn
from .tcp_proxy import open_proxy

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

pytestmark = pytest.mark.slow  # a real browser and a real server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Playwright's timeouts, in milliseconds: every wait in these tests is bounded.
TIMEOUT_MS = 10_000


def _missing(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the browser test (see .ci/run)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Playwright's async API runs on asyncio only."""
    return "asyncio"


@pytest.fixture(scope="module", params=["trio", "asyncio"])
def worker_class(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
async def chat_server(worker_class: str) -> AsyncIterator[HypercornServer]:
    async with run_hypercorn("examples.chat.app:app", worker_class=worker_class) as server:
        yield server


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        _missing(f"{CHROMIUM} is not installed (Debian: apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _missing("playwright is not installed (pip install playwright; never playwright install)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=TIMEOUT_MS
        )
        try:
            yield browser
        finally:
            await browser.close()


async def open_chat(
    browser: Browser, server: HypercornServer, nick: str, room: str, url: str | None = None
) -> Page:
    """Opens the chat page in a browser context of its own and joins ``room`` as ``nick``
    (through ``url`` when given, a proxy's, say)."""
    from playwright.async_api import expect

    context = await browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    await page.goto(f"{url or server.url}/")
    await page.fill("#nick", nick)
    await page.fill("#room", room)
    await page.click("#join-button")
    await expect(page.locator("#status")).to_contain_text(f"{nick} in {room}", timeout=TIMEOUT_MS)
    return page


async def say(page: Page, text: str) -> None:
    await page.fill("#message", text)
    await page.press("#message", "Enter")


async def test_two_browsers_in_one_room_see_each_others_messages(
    browser: Browser, chat_server: HypercornServer
) -> None:
    from playwright.async_api import expect

    with anyio.fail_after(60):
        ada = await open_chat(browser, chat_server, "ada", "tea room")
        bob = await open_chat(browser, chat_server, "bob", "tea room")
        try:
            await expect(ada.locator("#log")).to_contain_text("bob joined", timeout=TIMEOUT_MS)
            await say(ada, "hello bob")
            await expect(bob.locator("#log")).to_contain_text("ada: hello bob", timeout=TIMEOUT_MS)
            await say(bob, "hi ada <b>not bold</b>")
            await expect(ada.locator("#log")).to_contain_text(
                "bob: hi ada <b>not bold</b>", timeout=TIMEOUT_MS
            )
            # each sees its own messages too, in order, and the page escaped the markup
            for page in (ada, bob):
                lines = await page.locator("#log li.message").all_inner_texts()
                assert lines == ["ada: hello bob", "bob: hi ada <b>not bold</b>"]
            assert await ada.locator("#log b").count() == 0
            await bob.click("#leave")
            await expect(ada.locator("#log")).to_contain_text("bob left", timeout=TIMEOUT_MS)
        finally:
            await ada.context.close()
            await bob.context.close()


async def test_a_member_whose_socket_drops_sees_what_was_missed_once_in_order(
    browser: Browser, chat_server: HypercornServer
) -> None:
    """Issue 17: ada's connection goes through a proxy, which cuts it; the page reconnects by
    itself (with backoff) once the network is back, with the position of the last event it
    showed, and shows what bob said meanwhile, once, in order."""
    from playwright.async_api import expect

    with anyio.fail_after(60):
        async with open_proxy(chat_server.port) as proxy:
            ada = await open_chat(browser, chat_server, "ada", "blip", url=proxy.http_url)
            bob = await open_chat(browser, chat_server, "bob", "blip")
            try:
                await say(bob, "before")
                await expect(ada.locator("#log")).to_contain_text("bob: before")
                proxy.cut()
                await expect(ada.locator("#status")).to_contain_text("reconnecting")
                for number in range(3):
                    await say(bob, f"missed {number}")
                await expect(bob.locator("#log")).to_contain_text("bob: missed 2")
                proxy.restore()
                await expect(ada.locator("#status")).to_contain_text("ada in blip")
                await say(bob, "after")
                await expect(ada.locator("#log")).to_contain_text("bob: after")
                lines = await ada.locator("#log li.message").all_inner_texts()
                expected = ["bob: before", *(f"bob: missed {n}" for n in range(3)), "bob: after"]
                assert lines == expected
                await expect(ada.locator("#log")).to_contain_text("reconnected")
            finally:
                await ada.context.close()
                await bob.context.close()
