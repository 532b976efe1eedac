"""wrap_json: JSON bodies parsed, 400 for malformed ones, both the bare and the factory form."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from shallot import build_server
from shallot._types import Middleware, Receive, Request, Response, Send
from shallot.middlewares import apply_middleware, wrap_json
from shallot.response import json
from shallot.testing import TestClient


async def record_request(request: Request) -> Response:
    return {"status": 299, "request": request}


async def call(
    middleware: Middleware, content_type: str | None, body: bytes, method: str = "POST"
) -> Response:
    headers = {} if content_type is None else {"content-type": content_type}
    request = {"method": method, "headers": headers, "body": body}
    response = await apply_middleware(middleware)(record_request)(request)
    assert isinstance(response, dict)
    return response


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "Application/JSON; charset=utf-8",
        "application/ld+json",
        "application/vnd.api+json ; ext=1",
        "application/problem+json",
    ],
)
async def test_json_content_types_are_parsed(content_type: str) -> None:
    response = await call(wrap_json(), content_type, b'{"a": [1, 2.5, "\xc3\xa9", null]}')
    assert response["request"]["json"] == {"a": [1, 2.5, "é", None]}


async def test_a_utf8_bom_is_skipped() -> None:
    response = await call(wrap_json(), "application/json", b"\xef\xbb\xbf[1]")
    assert response["request"]["json"] == [1]


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/jsonx", "application/+json", "text/x+json"]
)
async def test_other_content_types_get_none(content_type: str | None) -> None:
    response = await call(wrap_json(), content_type, b"{not even json")
    assert response["status"] == 299
    assert response["request"]["json"] is None


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"{'a': 1}",
        b"[1,]",
        b"   ",
        b'"\xff"',  # invalid UTF-8
        b'"\xed\xa0\x80"',  # an encoded surrogate is invalid UTF-8 too
        '"é"'.encode("utf-16"),
        b"[" * 100_000 + b"]" * 100_000,  # deeper than the parser's recursion
        b"1" * 5_000,  # more digits than Python converts to an int
        b"NaN-",
        b"1e999",  # beyond a float: Python's parser makes inf of it
        b'{"a": "\\udc00"}',  # half a surrogate pair: no UTF-8 carries it
    ],
)
async def test_malformed_json_is_400(body: bytes) -> None:
    response = await call(wrap_json(), "application/json", body)
    assert (response["status"], response["body"]) == (400, b"Malformed JSON")


@pytest.mark.parametrize(
    "body", [b"NaN", b'{"a": Infinity}', b"[1, -Infinity]"], ids=["NaN", "Infinity", "-Infinity"]
)
async def test_nan_and_infinity_are_malformed_json(body: bytes) -> None:
    # Python's parser takes them; RFC 8259 §6 and JSON.parse do not.
    response = await call(wrap_json(), "application/json", body)
    assert (response["status"], response["body"]) == (400, b"Malformed JSON")


async def test_empty_body() -> None:
    lenient = await call(wrap_json(), "application/json", b"")
    assert lenient["request"]["json"] is None
    strict = await call(wrap_json(fail_on_missing_body=True), "application/json", b"")
    assert (strict["status"], strict["body"]) == (400, b"Malformed JSON")
    positional = await call(wrap_json(True), "application/json", b"")
    assert positional["status"] == 400
    other_type = await call(wrap_json(fail_on_missing_body=True), "text/plain", b"")
    assert other_type["request"]["json"] is None


async def test_bare_use_as_in_shallot_2() -> None:
    response = await call(wrap_json, "application/json", b"[true]")
    assert response["request"]["json"] == [True]


async def test_websocket_requests_skip_parsing_and_pass_the_takeover_through() -> None:
    async def takeover(receive: Receive, send: Send) -> None:
        raise AssertionError("not run here")

    async def websocket_handler(request: Request) -> Any:
        assert request["json"] is None
        return takeover

    request = {"method": "WS", "headers": {"content-type": "application/json"}, "body": b"{"}
    assert await apply_middleware(wrap_json())(websocket_handler)(request) is takeover


async def test_the_callers_request_is_left_alone() -> None:
    request = {"method": "POST", "headers": {"content-type": "application/json"}, "body": b"1"}
    await apply_middleware(wrap_json())(record_request)(request)
    assert "json" not in request


@pytest.mark.parametrize("option", ["yes", None, 1])
def test_options_are_checked_when_built(option: Any) -> None:
    with pytest.raises(TypeError, match="fail_on_missing_body must be a bool"):
        wrap_json(option)


async def test_end_to_end() -> None:
    async def echo(request: Request) -> Response:
        return json({"got": request["json"]})

    app = build_server(apply_middleware(wrap_json)(echo))
    with anyio.fail_after(5):
        async with TestClient(app) as client:
            assert (await client.post("/", json={"x": [1]})).json() == {"got": {"x": [1]}}
            assert (await client.get("/")).json() == {"got": None}
            bad = await client.post(
                "/", content=b"{oops", headers={"content-type": "application/json"}
            )
            assert (bad.status_code, bad.text) == (400, "Malformed JSON")
