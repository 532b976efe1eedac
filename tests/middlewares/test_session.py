"""wrap_session: a dict per browser in a signed cookie (issue 15)."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from typing import Any

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from shallot import build_server, standard_not_found, websocket
from shallot._types import ASGIApp, Request, Response
from shallot.middlewares import apply_middleware, wrap_cookies, wrap_routes, wrap_session
from shallot.response import json, text, ws_send
from shallot.testing import TestClient

KEY = "a key long enough for the tests"


async def visit(request: Request) -> Response:
    session = request["session"]
    session["visits"] = session.get("visits", 0) + 1
    return text(f"visit {session['visits']}")


async def look(request: Request) -> Response:
    return json(request["session"])


async def login(request: Request) -> Response:
    return {**text("hello"), "session": {"user": "ada"}}


async def logout(request: Request) -> Response:
    return {**text("bye"), "session": None}


async def clear(request: Request) -> Response:
    request["session"].clear()
    return text("cleared")


@websocket
async def whoami(scope: Request, receiver: Any) -> Any:
    yield ws_send(str(scope["session"].get("user")))


ROUTES = [
    ("/visit", ["GET"], visit),
    ("/look", ["GET"], look),
    ("/login", ["POST"], login),
    ("/logout", ["POST"], logout),
    ("/clear", ["POST"], clear),
    ("/ws", ["WS"], whoami),
]


def session_app(key: Any = KEY, **options: Any) -> ASGIApp:
    return build_server(
        apply_middleware(wrap_session(key, **options), wrap_routes(ROUTES))(standard_not_found)
    )


def signed(data: Any, key: str = KEY, timestamp: int | None = None) -> str:
    """A cookie value as wrap_session writes it, optionally signed at another time."""

    class Signer(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) if timestamp is None else timestamp

    serializer = URLSafeTimedSerializer(
        key,
        salt="shallot.session",
        signer=Signer,
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha256},
    )
    return serializer.dumps(data)


async def test_the_session_lives_in_a_cookie_across_requests() -> None:
    async with TestClient(session_app()) as client:
        first = await client.get("/visit")
        second = await client.get("/visit")
    assert (first.text, second.text) == ("visit 1", "visit 2")
    set_cookie = first.headers["set-cookie"]
    assert set_cookie.startswith("session=")
    for attribute in ("HttpOnly", "SameSite=Lax", "Path=/", f"Max-Age={14 * 24 * 3600}"):
        assert attribute in set_cookie
    assert "Secure" not in set_cookie


async def test_an_unchanged_session_writes_no_cookie() -> None:
    async with TestClient(session_app()) as client:
        fresh = await client.get("/look")
        await client.get("/visit")
        looked = await client.get("/look")
    assert (fresh.json(), "set-cookie" in fresh.headers) == ({}, False)
    assert (looked.json(), "set-cookie" in looked.headers) == ({"visits": 1}, False)


async def test_the_response_can_set_and_end_the_session() -> None:
    async with TestClient(session_app()) as client:
        await client.post("/login")
        assert (await client.get("/look")).json() == {"user": "ada"}
        out = await client.post("/logout")
        assert "Max-Age=0" in out.headers["set-cookie"]
        assert (await client.get("/look")).json() == {}
        await client.post("/login")
        cleared = await client.post("/clear")  # emptied in place: deleted too
        assert "Max-Age=0" in cleared.headers["set-cookie"]


@pytest.mark.parametrize(
    "cookie",
    [
        signed({"user": "ada"})[:-2] + "xx",  # signature changed
        signed({"user": "root"}, key="another key"),  # signed by a key we do not know
        signed({"user": "ada"}, timestamp=int(time.time()) - 3601),  # expired (max_age=3600)
        signed(["not", "a", "dict"]),
        "garbage",
        "a.b.c",
    ],
)
async def test_a_bad_cookie_is_an_empty_session_and_is_cleared(cookie: str) -> None:
    async with TestClient(session_app(max_age=3600), cookies={"session": cookie}) as client:
        response = await client.get("/look")
    assert (response.status_code, response.json()) == (200, {})
    assert "Max-Age=0" in response.headers["set-cookie"]


async def test_a_good_cookie_within_max_age_is_read() -> None:
    cookie = signed({"user": "ada"}, timestamp=int(time.time()) - 3000)
    async with TestClient(session_app(max_age=3600), cookies={"session": cookie}) as client:
        assert (await client.get("/look")).json() == {"user": "ada"}


async def test_rotated_keys_verify_with_all_and_sign_with_the_first() -> None:
    old = signed({"visits": 5}, key="the old key")
    app = session_app(["the new key", "the old key"])
    async with TestClient(app, cookies={"session": old}) as client:
        response = await client.get("/visit")
    assert response.text == "visit 6"
    new_cookie = response.headers["set-cookie"].split(";")[0].removeprefix("session=")
    async with TestClient(session_app("the new key"), cookies={"session": new_cookie}) as client:
        assert (await client.get("/look")).json() == {"visits": 6}


async def test_cookie_options_and_a_request_cookies_dict_are_used() -> None:
    app = build_server(
        apply_middleware(
            wrap_cookies(),  # request["cookies"] is read when it is there
            wrap_session(
                KEY,
                cookie_name="sid",
                max_age=None,
                same_site="strict",
                https_only=True,
                domain="example.com",
                path="/app",
            ),
            wrap_routes(ROUTES),
        )(standard_not_found)
    )
    async with TestClient(app) as client:
        response = await client.get("/visit")
        set_cookie = response.headers["set-cookie"]
        for attribute in ("sid=", "Secure", "SameSite=Strict", "Domain=example.com", "Path=/app"):
            assert attribute in set_cookie
        assert "Max-Age" not in set_cookie
        value = set_cookie.split(";")[0].removeprefix("sid=")
        looked = await client.get("/look", headers={"cookie": f"sid={value}"})
    assert looked.json() == {"visits": 1}


async def test_websockets_read_the_session() -> None:
    async with TestClient(session_app(), cookies={"session": signed({"user": "ada"})}) as client:
        async with client.websocket("/ws") as ws:
            assert await ws.receive() == "ada"


async def test_a_huge_session_is_sent_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="shallot")

    async def big(request: Request) -> Response:
        return {**text("big"), "session": {"blob": os.urandom(3000).hex()}}

    app = build_server(apply_middleware(wrap_session(KEY))(big))
    async with TestClient(app) as client:
        response = await client.get("/")
    assert "set-cookie" in response.headers
    assert any("browsers drop" in r.getMessage() for r in caplog.records)


async def test_a_session_that_is_no_dict_is_a_handler_bug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="shallot")

    async def wrong(request: Request) -> Response:
        return {**text("x"), "session": ["a"]}

    async with TestClient(build_server(apply_middleware(wrap_session(KEY))(wrong))) as client:
        assert (await client.get("/")).status_code == 500


@pytest.mark.parametrize(
    ("key", "options"),
    [
        ("", {}),
        ([], {}),
        (["ok", ""], {}),
        ([3], {}),
        (KEY, {"max_age": 0}),
        (KEY, {"max_age": True}),
        (KEY, {"same_site": "sometimes"}),
        (KEY, {"same_site": "none"}),  # without https_only
        (KEY, {"cookie_name": "bad name"}),
        (KEY, {"path": "/a;b"}),
    ],
)
def test_options_are_checked_once(key: Any, options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"wrap_session|cookie"):
        wrap_session(key, **options)
