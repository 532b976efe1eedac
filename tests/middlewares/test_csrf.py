"""wrap_csrf: requests other sites make a browser send are refused (issue 15)."""

from __future__ import annotations

from typing import Any

import pytest

from shallot import build_server, standard_not_found, websocket
from shallot._types import ASGIApp, Request, Response
from shallot.middlewares import apply_middleware, wrap_csrf, wrap_routes
from shallot.middlewares.csrf import cross_site_reason
from shallot.response import text, ws_send
from shallot.testing import TestClient, WebSocketRejected


async def change(request: Request) -> Response:
    return text(f"{request['method']} done")


@websocket
async def live(scope: Request, receiver: Any) -> Any:
    yield ws_send("hello")


def csrf_app(**options: Any) -> ASGIApp:
    routes: list[Any] = [
        ("/change", ["GET", "POST", "PUT", "DELETE", "OPTIONS"], change),
        ("/live", ["WS"], live),
    ]
    return build_server(
        apply_middleware(wrap_csrf(**options), wrap_routes(routes))(standard_not_found)
    )


HOST = {"host": "shop.example"}


@pytest.mark.parametrize(
    ("method", "headers", "reason"),
    [
        # safe methods always pass
        ("GET", {"sec-fetch-site": "cross-site"}, None),
        ("HEAD", {"origin": "https://evil.example"}, None),
        ("OPTIONS", {"sec-fetch-site": "cross-site"}, None),
        # Fetch Metadata decides when it is there
        ("POST", {"sec-fetch-site": "same-origin", "origin": "https://evil.example"}, None),
        ("POST", {"sec-fetch-site": "none"}, None),
        ("POST", {"sec-fetch-site": "cross-site"}, "(Sec-Fetch-Site: cross-site)"),
        ("DELETE", {"sec-fetch-site": "same-site"}, "(Sec-Fetch-Site: same-site)"),
        ("WS", {"sec-fetch-site": "cross-site"}, "(Sec-Fetch-Site: cross-site)"),
        # else Origin against Host
        ("POST", {"origin": "https://shop.example"}, None),
        ("POST", {"origin": "http://SHOP.example"}, None),
        ("PUT", {"origin": "https://evil.example"}, "Origin https://evil.example is not shop"),
        ("POST", {"origin": "null"}, "(Origin: null)"),
        ("POST", {"origin": "https://shop.example.evil.example"}, "is not shop.example"),
        ("WS", {"origin": "https://evil.example"}, "is not shop.example"),
        # neither header: not a browser
        ("POST", {}, None),
        ("WS", {}, None),
    ],
)
def test_cross_site_reason(method: str, headers: dict[str, str], reason: str | None) -> None:
    found = cross_site_reason(method, {**HOST, **headers})
    if reason is None:
        assert found is None
    else:
        assert found is not None
        assert reason in found


def test_trusted_origins_pass() -> None:
    trusted = frozenset({"https://admin.example"})
    headers = {**HOST, "origin": "https://admin.example", "sec-fetch-site": "same-site"}
    assert cross_site_reason("POST", headers, trusted) is None
    assert cross_site_reason("POST", {**headers, "origin": "https://x.example"}, trusted)


async def test_a_forged_post_gets_403_with_the_reason_and_never_reaches_the_handler() -> None:
    async with TestClient(csrf_app()) as client:
        forged = await client.post(
            "/change", headers={"origin": "https://evil.example", "sec-fetch-site": "cross-site"}
        )
        own = await client.post(
            "/change",
            headers={"origin": "http://testserver", "sec-fetch-site": "same-origin"},
        )
        old_browser = await client.put("/change", headers={"origin": "http://testserver"})
        script = await client.delete("/change")  # no browser headers at all: curl, a server
        read = await client.get("/change", headers={"sec-fetch-site": "cross-site"})
    assert (forged.status_code, forged.text) == (
        403,
        "cross-site request refused (Sec-Fetch-Site: cross-site)",
    )
    assert (own.status_code, own.text) == (200, "POST done")
    assert old_browser.text == "PUT done"
    assert script.text == "DELETE done"
    assert read.text == "GET done"


async def test_a_cross_site_websocket_handshake_is_denied() -> None:
    async with TestClient(csrf_app()) as client:
        with pytest.raises(WebSocketRejected) as rejected:
            async with client.websocket("/live", headers={"origin": "https://evil.example"}):
                pass
        assert rejected.value.status == 403
        assert b"is not testserver" in rejected.value.body
        async with client.websocket("/live", headers={"origin": "http://testserver"}) as ws:
            assert await ws.receive() == "hello"


async def test_trusted_origins_are_configured_once() -> None:
    app = csrf_app(trusted_origins=["https://admin.example/"])
    async with TestClient(app) as client:
        response = await client.post(
            "/change",
            headers={"origin": "https://admin.example", "sec-fetch-site": "cross-site"},
        )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "origins",
    ["https://a.example", ["a.example"], ["https://a.example/path"], ["ftp://a.example"], [3]],
)
def test_malformed_trusted_origins_fail_at_build_time(origins: Any) -> None:
    with pytest.raises(ValueError, match="wrap_csrf"):
        wrap_csrf(trusted_origins=origins)
