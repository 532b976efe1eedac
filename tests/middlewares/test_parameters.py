"""wrap_parameters: query strings and url-encoded forms, and 400 for what cannot be decoded."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shallot import build_server
from shallot._types import Request, Response
from shallot.middlewares import apply_middleware, wrap_parameters
from shallot.response import json
from shallot.testing import TestClient

FORM = "application/x-www-form-urlencoded"


async def record_request(request: Request) -> Response:
    return {"status": 299, "request": request}


async def call(request: Request, **options: Any) -> Response:
    handle = apply_middleware(wrap_parameters(**options))(record_request)
    response = await handle({"method": "GET", "headers": {}, "body": b"", **request})
    assert isinstance(response, dict)
    return response


async def params_of(request: Request, **options: Any) -> dict[str, Any]:
    response = await call(request, **options)
    assert response["status"] == 299, response
    seen = response["request"]
    return {key: seen[key] for key in ("query_params", "form_params", "params")}


async def test_query_string() -> None:
    assert await params_of({"query_string": b"a=1&b=x+y&a=2&q=caf%C3%A9&empty="}) == {
        "query_params": {"a": ["1", "2"], "b": ["x y"], "q": ["café"]},
        "form_params": {},
        "params": {"a": ["1", "2"], "b": ["x y"], "q": ["café"]},
    }


async def test_no_query_string() -> None:
    assert await params_of({}) == {"query_params": {}, "form_params": {}, "params": {}}


async def test_keep_blank_values() -> None:
    params = await params_of({"query_string": b"a=&b"}, keep_blank_values=True)
    assert params["query_params"] == {"a": [""], "b": [""]}


async def test_raw_non_ascii_bytes_are_decoded_like_escaped_ones() -> None:
    params = await params_of({"query_string": "q=café".encode()})
    assert params["query_params"] == {"q": ["café"]}


async def test_other_encoding() -> None:
    params = await params_of({"query_string": b"q=caf%E9"}, encoding="latin-1")
    assert params["query_params"] == {"q": ["café"]}


@pytest.mark.parametrize(
    ("request_", "options", "reason"),
    [
        ({"query_string": b"q=%ff"}, {}, b"query string"),
        ({"query_string": b"q=\xff\xfe"}, {}, b"query string"),
        ({"query_string": b"a=1&&b=2"}, {"strict_parsing": True}, b"query string"),
        ({"query_string": b"a"}, {"strict_parsing": True}, b"query string"),
        (
            {"headers": {"content-type": FORM}, "body": b"name=%C3%28", "method": "POST"},
            {},
            b"form body",
        ),
    ],
)
async def test_undecodable_input_is_400(
    request_: Request, options: dict[str, Any], reason: bytes
) -> None:
    response = await call(request_, **options)
    assert response["status"] == 400
    assert reason in response["body"]


async def test_lenient_parsing_skips_what_strict_refuses() -> None:
    params = await params_of({"query_string": b"a=1&&b"})
    assert params["query_params"] == {"a": ["1"]}


async def test_form_body_is_merged_after_the_query() -> None:
    params = await params_of(
        {
            "method": "POST",
            "query_string": b"a=q&b=2",
            "headers": {"content-type": f"{FORM.upper()}; charset=UTF-8"},
            "body": b"a=f1&c=3&a=f2",
        }
    )
    assert params == {
        "query_params": {"a": ["q"], "b": ["2"]},
        "form_params": {"a": ["f1", "f2"], "c": ["3"]},
        "params": {"a": ["q", "f1", "f2"], "b": ["2"], "c": ["3"]},
    }


@pytest.mark.parametrize("content_type", [None, "application/json", "multipart/form-data", "x"])
async def test_other_bodies_are_not_forms(content_type: str | None) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    params = await params_of({"method": "POST", "headers": headers, "body": b"a=1"})
    assert params["form_params"] == {}


async def test_websocket_requests_get_query_params_only() -> None:
    params = await params_of(
        {
            "method": "WS",
            "query_string": b"token=t",
            "headers": {"content-type": FORM},
            "body": b"%ff",
        }
    )
    assert params == {
        "query_params": {"token": ["t"]},
        "form_params": {},
        "params": {"token": ["t"]},
    }


async def test_the_callers_request_is_left_alone() -> None:
    request = {"method": "GET", "headers": {}, "query_string": b"a=1"}
    response = await apply_middleware(wrap_parameters())(record_request)(request)
    assert isinstance(response, dict)
    assert response["request"] is not request
    assert "params" not in request


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"keep_blank_values": "yes"}, TypeError, "keep_blank_values must be a bool"),
        ({"strict_parsing": 1}, TypeError, "strict_parsing must be a bool"),
        ({"encoding": b"utf-8"}, TypeError, "encoding must be a str"),
        ({"encoding": "no-such-codec"}, ValueError, "not a text encoding"),
        ({"encoding": "base64"}, ValueError, "not a text encoding"),
    ],
)
def test_options_are_checked_when_built(options: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        wrap_parameters(**options)


@settings(max_examples=60, deadline=None)
@given(
    query=st.binary(max_size=40) | st.text(max_size=20).map(str.encode),
    body=st.binary(max_size=40),
    strict=st.booleans(),
    encoding=st.sampled_from(["utf-8", "ascii", "latin-1", "utf-16"]),
)
async def test_any_input_gives_params_or_400(
    query: bytes, body: bytes, strict: bool, encoding: str
) -> None:
    request = {
        "method": "POST",
        "query_string": query,
        "headers": {"content-type": FORM},
        "body": body,
    }
    response = await call(request, strict_parsing=strict, encoding=encoding)
    assert response["status"] in (299, 400)


async def test_end_to_end() -> None:
    async def echo(request: Request) -> Response:
        return json(request["params"])

    app = build_server(apply_middleware(wrap_parameters())(echo))
    with anyio.fail_after(5):
        async with TestClient(app) as client:
            response = await client.post("/?a=1&b=%C3%A9", data={"a": "2", "c": "x y"})
            assert response.json() == {"a": ["1", "2"], "b": ["é"], "c": ["x y"]}
            bad = await client.get("/?q=%ff")
            assert bad.status_code == 400
            assert bad.text == "Bad Request: malformed query string"
