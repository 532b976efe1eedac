"""wrap_cookies: tolerant request parsing, one set-cookie header per response cookie."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shallot import build_server
from shallot._types import Receive, Request, Response, Send
from shallot.middlewares import apply_middleware, wrap_cookies
from shallot.middlewares.cookies import format_set_cookie, parse_cookies
from shallot.response import json, text
from shallot.testing import TestClient

# --- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "cookies"),
    [
        ("", {}),
        ("a=1", {"a": "1"}),
        ("a=1; b=2;c=3", {"a": "1", "b": "2", "c": "3"}),
        (' a = "quoted value" ; b=', {"a": "quoted value", "b": ""}),
        ("a=1; a=2", {"a": "1"}),  # the first is the most specific (RFC 6265 §5.4)
        ("token=x=y==", {"token": "x=y=="}),
        ("bad; a=1; =nameless; ;; b=2", {"a": "1", "b": "2"}),
        ('a="; b=2', {"a": '"', "b": "2"}),  # SimpleCookie drops everything from here on
        ("a=\\x; b=é", {"a": "\\x", "b": "é"}),
    ],
)
def test_parse_cookies(header: str, cookies: dict[str, str]) -> None:
    assert parse_cookies(header) == cookies


@settings(max_examples=200, deadline=None)
@given(
    st.text(max_size=60)
    | st.lists(st.sampled_from(["a", "=", ";", " ", '"', "b", ","])).map("".join)
)
def test_parse_cookies_never_raises(header: str) -> None:
    cookies = parse_cookies(header)
    assert all(name and ";" not in name and "=" not in name for name in cookies)
    assert all(";" not in value for value in cookies.values())


async def record_request(request: Request) -> Response:
    return {"status": 299, "request": request}


async def cookies_of(request: Request) -> dict[str, str]:
    response = await apply_middleware(wrap_cookies())(record_request)({"method": "GET", **request})
    assert isinstance(response, dict)
    assert "cookies" not in response
    cookies: dict[str, str] = response["request"]["cookies"]
    return cookies


async def test_request_cookies_from_every_cookie_header() -> None:
    # HTTP/2 may split the Cookie header (RFC 9113 §8.2.3); request["headers"] joins repeats
    # with ",", which would glue two cookies together, so the raw list is read.
    raw = [(b"cookie", b"a=1; b=2"), (b"accept", b"*/*"), (b"Cookie", "c=caf\u00e9".encode())]
    cookies = await cookies_of(
        {"headers": {"cookie": "a=1; b=2,c=caf\xc3\xa9"}, "headers_list": raw}
    )
    assert cookies == {"a": "1", "b": "2", "c": "café"}


async def test_request_cookies_from_a_hand_built_request() -> None:
    assert await cookies_of({"headers": {"cookie": "a=1; b=caf\xc3\xa9"}}) == {
        "a": "1",
        "b": "café",
    }
    assert await cookies_of({"headers": {"cookie": "b=\u2603"}}) == {"b": "\u2603"}
    assert await cookies_of({"headers": {}}) == {}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=30), max_size=3))
async def test_any_cookie_header_is_accepted(values: list[bytes]) -> None:
    await cookies_of({"headers": {}, "headers_list": [(b"cookie", value) for value in values]})


# --- writing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cookie", "header"),
    [
        ("a", {"value": "1"}, "a=1"),
        ("a", {}, "a="),
        ("n", {"value": 42}, "n=42"),
        (
            "sid",
            {
                "value": "x",
                "max-age": 60,
                "path": "/",
                "domain": "example.com",
                "secure": True,
                "httponly": True,
                "samesite": "lax",
            },
            "sid=x; Max-Age=60; Domain=example.com; Path=/; Secure; HttpOnly; SameSite=Lax",
        ),
        ("a", {"value": "1", "secure": False, "httponly": None, "path": None}, "a=1"),
        ("a", {"value": "1", "expires": 0}, "a=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT"),
        (
            "a",
            {"value": "1", "expires": 1_700_000_000.5},
            "a=1; Expires=Tue, 14 Nov 2023 22:13:20 GMT",
        ),
        (
            "a",
            {"value": "1", "expires": datetime(2030, 1, 2, 3, 4, 5)},
            "a=1; Expires=Wed, 02 Jan 2030 03:04:05 GMT",
        ),
        (
            "a",
            {
                "value": "1",
                "expires": datetime(2030, 1, 2, 4, 4, 5, tzinfo=timezone(timedelta(hours=1))),
            },
            "a=1; Expires=Wed, 02 Jan 2030 03:04:05 GMT",
        ),
        (
            "a",
            {"value": "1", "expires": "Wed, 02 Jan 2030 03:04:05 GMT"},
            "a=1; Expires=Wed, 02 Jan 2030 03:04:05 GMT",
        ),
        (
            "a",
            {"value": "1", "Max-Age": "-1", "SameSite": "None"},
            "a=1; Max-Age=-1; SameSite=None",
        ),
        ("a", {"value": "1", "comment": "2.0 accepted this", "version": 1}, "a=1"),
        ("a", {"value": 'x y;z,"é\\%'}, "a=x%20y%3Bz%2C%22%C3%A9%5C%25"),
        ("a", {"value": "b64+/=="}, "a=b64+/=="),
        ("a", None, "a=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/"),
    ],
)
def test_format_set_cookie(name: str, cookie: Any, header: str) -> None:
    assert format_set_cookie(name, cookie) == header


@pytest.mark.parametrize(
    ("name", "cookie", "error", "message"),
    [
        ("a b", {"value": "1"}, ValueError, "not a token"),
        ("a;b", {"value": "1"}, ValueError, "not a token"),
        ("", {"value": "1"}, ValueError, "not a token"),
        ("a\n", {"value": "1"}, ValueError, "not a token"),
        ("a", "value", TypeError, "must be a dict"),
        ("a", {"value": b"1"}, TypeError, "value must be a str"),
        ("a", {"value": "1", "max_age": 1}, ValueError, "unknown attribute"),
        ("a", {"value": "1", "max-age": 1.5}, TypeError, "max-age must be an int"),
        ("a", {"value": "1", "max-age": "soon"}, ValueError, "not a whole number"),
        ("a", {"value": "1", "path": "/; Secure"}, ValueError, "path"),
        ("a", {"value": "1", "domain": "x\r\nInjected: 1"}, ValueError, "domain"),
        ("a", {"value": "1", "expires": "soon; Path=/"}, ValueError, "expires"),
        ("a", {"value": "1", "expires": [1]}, TypeError, "expires must be"),
        ("a", {"value": "1", "expires": 10**20}, ValueError, "out of range"),
        ("a", {"value": "1", "samesite": "sometimes"}, ValueError, "samesite"),
    ],
)
def test_malformed_response_cookies_raise(
    name: str, cookie: Any, error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        format_set_cookie(name, cookie)


async def through_cookies(response: Any, **request: Any) -> Any:
    """Returns what the middleware makes of a handler's ``response`` to ``request``."""

    async def handler(request: Request) -> Any:
        return response

    pile = apply_middleware(wrap_cookies())(handler)
    return await pile({"method": "GET", "headers": {}, **request})


async def test_one_header_per_cookie_and_the_key_is_removed() -> None:
    cookies = {"a": {"value": "1"}, "b": None, "c": {"value": "3", "path": "/c"}}
    response = {"status": 200, "headers": {"content-type": "text/plain"}, "cookies": cookies}
    assert await through_cookies(response) == {
        "status": 200,
        "headers": [
            ("content-type", "text/plain"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/"),
            ("set-cookie", "c=3; Path=/c"),
        ],
    }
    assert "cookies" in response  # the handler's dict is left alone


async def test_list_headers_are_extended() -> None:
    response = {
        "status": 200,
        "headers": [("set-cookie", "x=0"), ("vary", "a")],
        "cookies": {"a": {"value": "1"}},
    }
    result = await through_cookies(response)
    assert result["headers"] == [("set-cookie", "x=0"), ("vary", "a"), ("set-cookie", "a=1")]


@pytest.mark.parametrize("cookies", [{}, None])
async def test_no_cookies_leaves_headers_alone(cookies: Any) -> None:
    response = {"status": 204, "headers": {"x": "1"}, "cookies": cookies}
    assert await through_cookies(response) == {"status": 204, "headers": {"x": "1"}}
    untouched = {"status": 204}
    assert await through_cookies(untouched) is untouched


async def test_a_websocket_takeover_passes_through_untouched() -> None:
    async def takeover(receive: Receive, send: Send) -> None:
        raise AssertionError("not run here")

    result = await through_cookies(takeover, method="WS", headers_list=[(b"cookie", b"s=1")])
    assert result is takeover


async def test_bare_use_as_in_shallot_2() -> None:
    response = await apply_middleware(wrap_cookies)(record_request)(
        {"method": "GET", "headers": {"cookie": "a=1"}}
    )
    assert isinstance(response, dict)
    assert response["request"]["cookies"] == {"a": "1"}


def test_wrap_cookies_takes_no_options() -> None:
    with pytest.raises(TypeError, match="takes no options"):
        wrap_cookies("secure")  # type: ignore[call-overload]


async def test_end_to_end_round_trip_and_errors() -> None:
    async def handler(request: Request) -> Response:
        if request["path"] == "/login":
            return {
                **text("welcome"),
                "cookies": {
                    "session": {"value": "s1", "httponly": True, "path": "/"},
                    "theme": {"value": "dark", "max-age": 3600, "path": "/"},
                },
            }
        if request["path"] == "/logout":
            return {**text("bye"), "cookies": {"session": None}}
        if request["path"] == "/broken":
            return {**text("never sent"), "cookies": {"bad name": {"value": "1"}}}
        return json(request["cookies"])

    app = build_server(apply_middleware(wrap_cookies)(handler))
    with anyio.fail_after(5):
        async with TestClient(app) as client:
            login = await client.get("/login")
            assert login.headers.get_list("set-cookie") == [
                "session=s1; Path=/; HttpOnly",
                "theme=dark; Max-Age=3600; Path=/",
            ]
            assert (await client.get("/")).json() == {"session": "s1", "theme": "dark"}
            await client.get("/logout")
            assert (await client.get("/")).json() == {"theme": "dark"}
            assert (await client.get("/broken")).status_code == 500
            malformed = await client.get("/", headers={"cookie": 'x="; theme=light'})
            assert malformed.status_code == 200
