"""wrap_cors: preflights, CORS response headers, Vary, and build-time checks (issue 4)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shallot import build_server
from shallot._types import Handler, HandlerResult, Request, Response
from shallot.middlewares import apply_middleware, wrap_cors
from shallot.testing import TestClient

SITE = "https://app.example.com"


async def ok(request: Request) -> Response:
    return {"status": 200, "headers": {"content-type": "text/plain"}, "body": b"ok"}


async def must_not_run(request: Request) -> Response:
    raise AssertionError("the handler was called for a preflight")


def cors(handler: Handler = ok, **options: Any) -> Handler:
    return apply_middleware(wrap_cors(**options))(handler)


def request(method: str = "GET", **headers: str) -> Request:
    return {"method": method, "path": "/", "headers": headers, "body": b""}


def preflight(method: str = "PUT", origin: str = SITE, asked: str | None = None) -> Request:
    headers = {"origin": origin, "access-control-request-method": method}
    if asked is not None:
        headers["access-control-request-headers"] = asked
    return request("OPTIONS", **headers)


async def call(handler: Handler, req: Request) -> Response:
    result = await handler(req)
    assert isinstance(result, dict)
    return result


# --- requests that are not CORS requests


async def test_requests_without_origin_pass_through_untouched() -> None:
    answer: Response = {"status": 200, "headers": {"vary": "Cookie"}, "body": b"ok"}

    async def handler(req: Request) -> Response:
        return answer

    result = await cors(handler, allow_origins=[SITE])(request())
    assert result is answer
    assert answer == {"status": 200, "headers": {"vary": "Cookie"}, "body": b"ok"}


async def test_websocket_requests_pass_through_untouched() -> None:
    async def takeover(receive: Any, send: Any) -> None:
        raise AssertionError("not run here")

    async def ws_handler(req: Request) -> HandlerResult:
        return takeover

    handler = cors(ws_handler, allow_origins=[SITE])
    assert await handler(request("WS", origin="https://elsewhere.example")) is takeover
    assert await handler(request("WS", origin=SITE)) is takeover


async def test_a_takeover_from_a_cors_request_passes_through() -> None:
    async def takeover(receive: Any, send: Any) -> None:
        raise AssertionError("not run here")

    async def handler(req: Request) -> HandlerResult:
        return takeover

    assert await cors(handler)(request(origin=SITE)) is takeover


# --- simple and actual requests


async def test_any_origin_by_default_like_shallot_2() -> None:
    result = await call(cors(), request(origin="https://anyone.example"))
    assert result["headers"]["access-control-allow-origin"] == "*"
    assert "vary" not in result["headers"]  # the answer is the same for every origin
    assert "access-control-allow-credentials" not in result["headers"]
    assert result["body"] == b"ok"


async def test_a_listed_origin_is_echoed_with_vary() -> None:
    result = await call(cors(allow_origins=[SITE, "https://b.example"]), request(origin=SITE))
    assert result["headers"]["access-control-allow-origin"] == SITE
    assert result["headers"]["vary"] == "Origin"


async def test_origins_compare_without_case() -> None:
    handler = cors(allow_origins=["https://App.Example.com"])
    result = await call(handler, request(origin="https://app.EXAMPLE.com"))
    assert result["headers"]["access-control-allow-origin"] == "https://app.EXAMPLE.com"


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "https://app.example.com.evil.example",
        "http://app.example.com",  # another scheme is another origin
        "https://app.example.com:8443",
        "null",
        "",
    ],
)
async def test_other_origins_get_no_cors_headers_but_vary(origin: str) -> None:
    result = await call(cors(allow_origins=[SITE], allow_credentials=True), request(origin=origin))
    assert not any(name.startswith("access-control-") for name in result["headers"])
    assert result["headers"]["vary"] == "Origin"
    assert result["body"] == b"ok"  # the browser, not the server, withholds it from the page


async def test_null_is_allowed_only_when_listed() -> None:
    result = await call(cors(allow_origins=["null"]), request(origin="null"))
    assert result["headers"]["access-control-allow-origin"] == "null"


async def test_a_regex_allows_what_it_fully_matches() -> None:
    handler = cors(allow_origins=[], allow_origin_regex=r"https://[a-z]+\.example\.com")
    allowed = await call(handler, request(origin="https://shop.example.com"))
    prefixed = await call(handler, request(origin="https://shop.example.com.evil.example"))
    assert allowed["headers"]["access-control-allow-origin"] == "https://shop.example.com"
    assert "access-control-allow-origin" not in prefixed["headers"]
    assert prefixed["headers"]["vary"] == "Origin"


async def test_a_compiled_regex_is_accepted() -> None:
    handler = cors(allow_origins=(), allow_origin_regex=re.compile(r"https://.*\.test"))
    result = await call(handler, request(origin="https://a.test"))
    assert result["headers"]["access-control-allow-origin"] == "https://a.test"


async def test_credentials_and_exposed_headers() -> None:
    handler = cors(allow_origins=[SITE], allow_credentials=True, expose_headers=["X-Total", "etag"])
    result = await call(handler, request(origin=SITE))
    headers = result["headers"]
    assert headers["access-control-allow-origin"] == SITE
    assert headers["access-control-allow-credentials"] == "true"
    assert headers["access-control-expose-headers"] == "etag, x-total"


async def test_vary_is_merged_and_header_lists_are_kept() -> None:
    pairs = [("Vary", "Accept-Encoding"), ("set-cookie", "a=1"), ("set-cookie", "b=2")]
    answer: Response = {"status": 200, "headers": pairs, "body": b""}

    async def handler(req: Request) -> Response:
        return answer

    result = await call(cors(handler, allow_origins=[SITE]), request(origin=SITE))
    assert result["headers"] == [
        ("set-cookie", "a=1"),
        ("set-cookie", "b=2"),
        ("access-control-allow-origin", SITE),
        ("vary", "Accept-Encoding, Origin"),
    ]
    assert answer["headers"] == pairs  # the handler's response is not mutated


async def test_a_vary_star_stays_alone() -> None:
    async def handler(req: Request) -> Response:
        return {"status": 200, "headers": {"Vary": "*"}, "body": b""}

    result = await call(cors(handler, allow_origins=[SITE]), request(origin=SITE))
    assert result["headers"]["vary"] == "*"
    assert "Vary" not in result["headers"]


async def test_options_without_request_method_is_not_a_preflight() -> None:
    async def handler(req: Request) -> Response:
        return {"status": 200, "headers": {"allow": "GET"}, "body": b""}

    result = await call(cors(handler, allow_origins=[SITE]), request("OPTIONS", origin=SITE))
    assert result["headers"]["allow"] == "GET"
    assert result["headers"]["access-control-allow-origin"] == SITE


# --- preflights


async def test_an_allowed_preflight_gets_204_without_calling_the_handler() -> None:
    handler = cors(
        must_not_run,
        allow_origins=[SITE],
        allow_methods=["get", "PUT", "delete"],
        allow_headers=["Content-Type", "X-Token"],
        allow_credentials=True,
        max_age=120,
    )
    result = await call(handler, preflight("PUT", asked="x-token, Content-Type"))
    assert result["status"] == 204
    assert result["headers"] == {
        "access-control-allow-credentials": "true",
        "access-control-allow-origin": SITE,
        "access-control-allow-methods": "DELETE, GET, PUT",
        "access-control-allow-headers": "x-token, content-type",
        "access-control-max-age": "120",
        "vary": "Origin",
    }
    assert "body" not in result


async def test_a_preflight_with_wildcards_echoes_what_was_asked() -> None:
    handler = cors(must_not_run, allow_methods="*", allow_headers="*", max_age=None)
    result = await call(handler, preflight("PATCH", asked="X-Custom"))
    assert result["status"] == 204
    assert result["headers"]["access-control-allow-origin"] == "*"
    assert result["headers"]["access-control-allow-methods"] == "PATCH"
    assert result["headers"]["access-control-allow-headers"] == "x-custom"
    assert "access-control-max-age" not in result["headers"]
    assert "vary" not in result["headers"]


@pytest.mark.parametrize(
    "req",
    [
        preflight("PUT", origin="https://evil.example"),
        preflight("DELETE"),
        preflight("PUT", asked="x-token, x-other"),
        preflight("P U T"),
        preflight(""),
    ],
    ids=["origin", "method", "header", "bad-method", "empty-method"],
)
async def test_a_refused_preflight_gets_403_without_cors_headers(req: Request) -> None:
    handler = cors(
        must_not_run, allow_origins=[SITE], allow_methods=["PUT"], allow_headers=["x-token"]
    )
    result = await call(handler, req)
    assert result["status"] == 403
    assert not any(name.startswith("access-control-") for name in result["headers"])
    assert result["headers"]["vary"] == "Origin"


async def test_safelisted_headers_are_allowed_by_default() -> None:
    result = await call(cors(must_not_run), preflight("POST", asked="content-type, accept"))
    assert result["status"] == 204
    refused = await call(cors(must_not_run), preflight("POST", asked="authorization"))
    assert refused["status"] == 403


async def test_preflight_and_request_through_a_server() -> None:
    app = build_server(apply_middleware(wrap_cors(allow_origins=[SITE], allow_methods=["PUT"]))(ok))
    async with TestClient(app) as client:
        pre = await client.options(
            "/thing", headers={"origin": SITE, "access-control-request-method": "PUT"}
        )
        put = await client.put("/thing", headers={"origin": SITE})
        plain = await client.get("/thing")
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-methods"] == "PUT"
    assert put.headers["access-control-allow-origin"] == SITE
    assert put.headers["vary"] == "Origin"
    assert "access-control-allow-origin" not in plain.headers


# --- options


async def test_shallot_2_name_allow_origin_still_works() -> None:
    result = await call(cors(allow_origin=SITE), request(origin=SITE))
    assert result["headers"]["access-control-allow-origin"] == SITE


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"allow_credentials": True}, "allow_credentials"),
        ({"allow_origins": "*", "allow_credentials": True}, "allow_credentials"),
        ({"allow_origins": [SITE, "*"], "allow_credentials": True}, "allow_credentials"),
        (
            {"allow_origins": [SITE], "allow_credentials": True, "expose_headers": "*"},
            "expose_headers",
        ),
        ({"allow_origins": ["https://a.example/"]}, "origin"),
        ({"allow_origins": ["a.example"]}, "origin"),
        ({"allow_origin_regex": "(unclosed"}, "regex"),
        ({"allow_methods": ["GET", "BAD METHOD"]}, "allow_methods"),
        ({"allow_headers": ["x:y"]}, "allow_headers"),
        ({"max_age": -1}, "max_age"),
    ],
)
def test_bad_options_fail_at_build_time(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        wrap_cors(**options)


@pytest.mark.parametrize("options", [{"allow_credentials": "yes"}, {"max_age": 1.5}])
def test_options_of_the_wrong_type_fail_at_build_time(options: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match="wrap_cors"):
        wrap_cors(**options)


ALLOWED = ["https://a.example", "http://localhost:8000"]


@settings(max_examples=100, deadline=None)
@given(origin=st.one_of(st.sampled_from(ALLOWED), st.text(max_size=30)))
async def test_only_allowed_origins_ever_get_allow_origin(origin: str) -> None:
    result = await call(cors(allow_origins=ALLOWED, allow_credentials=True), request(origin=origin))
    allowed = origin.lower() in ALLOWED
    assert result["headers"].get("access-control-allow-origin") == (origin if allowed else None)
    assert result["headers"]["vary"] == "Origin"


async def test_repeated_vary_headers_are_merged_into_one() -> None:
    pairs = [("vary", "Cookie"), ("x-a", "1"), ("Vary", "accept-encoding, origin")]

    async def handler(req: Request) -> Response:
        return {"status": 200, "headers": pairs, "body": b""}

    result = await call(cors(handler, allow_origins=[SITE]), request(origin=SITE))
    assert result["headers"] == [
        ("x-a", "1"),
        ("access-control-allow-origin", SITE),
        ("vary", "Cookie, accept-encoding, origin"),  # "origin" was there already, in any case
    ]
