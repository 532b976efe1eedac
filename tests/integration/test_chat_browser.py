"""The chat demo in a real browser: headless Chromium, driven by Playwright (issues 7, 16).

Debian's ``chromium`` (``/usr/bin/chromium``) runs the page; Playwright only drives it, and
downloads nothing (never ``playwright install``). Two pages, each in a browser context of its
own, join one room with different nicknames, and each sees what the other typed. Then what a
newcomer met (issue 16): the join form hides and joins once, the own join is announced once,
a refused nickname shows why, no request fails (the favicon), and the page fits a 375 px
phone screen. Playwright is
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


async def open_page(
    browser: Browser,
    server: HypercornServer,
    *,
    width: int = 1280,
    height: int = 800,
    url: str | None = None,
) -> Page:
    """Opens the chat page in a browser context of its own, ``width`` CSS pixels wide, from
    ``url`` when given (a proxy's, say); every answer of 400 or more is kept in
    ``page.failed`` (URL and status)."""
    context = await browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(TIMEOUT_MS)
    page = await context.new_page()
    failed: list[tuple[str, int]] = []
    page.on("response", lambda r: failed.append((r.url, r.status)) if r.status >= 400 else None)
    page.failed = failed  # type: ignore[attr-defined]
    await page.goto(f"{url or server.url}/")
    await page.wait_for_load_state("load")
    return page


async def open_chat(
    browser: Browser,
    server: HypercornServer,
    nick: str,
    room: str,
    *,
    width: int = 1280,
    url: str | None = None,
) -> Page:
    """Opens the chat page (through ``url`` when given) and joins ``room`` as ``nick``."""
    from playwright.async_api import expect

    page = await open_page(browser, server, width=width, url=url)
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


async def test_joining_hides_the_form_and_happens_once(
    browser: Browser, chat_server: HypercornServer
) -> None:
    from playwright.async_api import expect

    with anyio.fail_after(60):
        page = await open_page(browser, chat_server)
        try:
            await page.fill("#nick", "cy")
            await page.fill("#room", "once")
            await page.dblclick("#join-button")  # an impatient second click joins nothing
            await expect(page.locator("#status")).to_have_text("cy in once")
            await expect(page.locator("#join")).to_be_hidden()
            await expect(page.locator("#message")).to_be_visible()
            await say(page, "only once")
            await expect(page.locator("#log li.message")).to_have_text(["cy: only once"])
            # the own join is announced once, by the welcome; the room's echo of it is not shown
            await expect(page.locator("#log li.notice")).to_have_text(["you joined once as cy"])
            assert "process" not in await page.locator("body").inner_text()
            await page.click("#leave")
            await expect(page.locator("#join")).to_be_visible()
            await expect(page.locator("#status")).to_have_text("you left the room")
        finally:
            await page.context.close()


async def test_a_page_closed_as_too_slow_comes_back_and_the_room_is_not_told(
    browser: Browser, chat_server: HypercornServer
) -> None:
    """A page closed with 1008 "too slow" (send_timeout) reconnects with the position of the
    last event it showed, like after a drop, instead of showing the join form. Its old
    connection closing only after the new one joined tells the room nothing: the member never
    left."""
    from playwright.async_api import expect

    with anyio.fail_after(60):
        ada = await open_chat(browser, chat_server, "ada", "slow")
        bob = await open_chat(browser, chat_server, "bob", "slow")
        try:
            await say(bob, "before")
            await expect(ada.locator("#log")).to_contain_text("bob: before")
            # the page hears the close the server gives a page too slow to read; its socket
            # stays open at the server for now, as when the server has not noticed yet
            await ada.evaluate(
                """() => {
                    const old = socket;
                    const hear = old.onclose;
                    old.onclose = old.onmessage = null;
                    window.oldSocket = old;
                    hear({code: 1008, reason: "too slow: a send took over 10s"});
                }"""
            )
            await expect(ada.locator("#log")).to_contain_text("reconnected")
            await expect(ada.locator("#status")).to_have_text("ada in slow")
            await ada.evaluate("() => window.oldSocket.close(1000)")
            await say(bob, "after")
            await expect(ada.locator("#log")).to_contain_text("bob: after")
            await expect(bob.locator("#log")).to_contain_text("bob: after")
            notices = await bob.locator("#log li.notice").all_inner_texts()
            assert notices == ["you joined slow as bob"]  # no "ada left", no second join
            lines = await ada.locator("#log li.message").all_inner_texts()
            assert lines == ["bob: before", "bob: after"]
        finally:
            await ada.context.close()
            await bob.context.close()


async def test_a_refused_nickname_shows_the_reason(
    browser: Browser, chat_server: HypercornServer
) -> None:
    from playwright.async_api import expect

    with anyio.fail_after(60):
        page = await open_page(browser, chat_server)
        try:
            await page.fill("#nick", "<ada>")
            await page.click("#join-button")
            await expect(page.locator("#status")).to_have_text(
                "nick and room: 1 to 32 letters, digits, spaces, - or _"
            )
            await expect(page.locator("#join")).to_be_visible()
            await expect(page.locator("#chat")).to_be_hidden()
            await expect(page.locator("#join-button")).to_be_enabled()
        finally:
            await page.context.close()


async def test_the_page_loads_without_a_failed_request(
    browser: Browser, chat_server: HypercornServer
) -> None:
    with anyio.fail_after(60):
        page = await open_page(browser, chat_server)
        try:
            icon = await page.evaluate(
                "fetch(document.querySelector('link[rel=icon]').href).then(r => r.status)"
            )
            assert icon == 200
            assert page.failed == []  # type: ignore[attr-defined]  # the favicon, say
        finally:
            await page.context.close()


async def test_the_page_fits_a_phone(browser: Browser, chat_server: HypercornServer) -> None:
    from playwright.async_api import expect

    with anyio.fail_after(60):
        page = await open_page(browser, chat_server, width=375, height=667)
        try:
            for selector in ("#nick", "#room", "#join-button"):
                box = await page.locator(selector).bounding_box()
                assert box is not None
                assert box["x"] >= 0, selector
                assert box["x"] + box["width"] <= 375, selector
            await page.fill("#nick", "dee")
            await page.fill("#room", "small")
            await page.click("#join-button")
            await expect(page.locator("#status")).to_have_text("dee in small")
            await say(page, "a-very-long-word-that-must-wrap-" * 4)
            await expect(page.locator("#log li.message")).to_have_count(1)
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 375  # nothing sticks out sideways
            for selector in ("#log", "#message", "#send", "#leave"):
                box = await page.locator(selector).bounding_box()
                assert box is not None
                assert box["x"] >= 0, selector
                assert box["x"] + box["width"] <= 375, selector
                assert box["y"] + box["height"] <= 667, selector  # on screen without scrolling
        finally:
            await page.context.close()


async def test_a_member_whose_socket_drops_sees_what_was_missed_once_in_order(
    browser: Browser, chat_server: HypercornServer
) -> None:
    """ada's connection goes through a proxy, which cuts it; the page reconnects by itself
    (with backoff) once the network is back, with the position of the last event it showed,
    and shows what bob said meanwhile, once, in order (issue 17)."""
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
