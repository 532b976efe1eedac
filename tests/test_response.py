"""The response helpers of ``shallot.response`` (SPEC §6): pure dict builders, plus the file
stream that ``filestream`` reads with anyio."""

from __future__ import annotations

import json as std_json
import logging
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shallot import build_server, standard_not_found
from shallot._types import Request, Response
from shallot.response import (
    filestream,
    json,
    json_response,
    respond400,
    respond404,
    respond_not_modified,
    standard_disconnect,
    text,
    ws_accept,
    ws_close,
    ws_send,
    ws_send_json,
)
from shallot.testing import TestClient


async def collect(response: Response) -> bytes:
    return b"".join([chunk async for chunk in response["stream"]])


# --- text and json ----------------------------------------------------------------------


def test_text_is_utf8_plain_text() -> None:
    assert text("héllo") == {
        "status": 200,
        "headers": {"content-type": "text/plain; charset=utf-8"},
        "body": "héllo".encode(),
    }


def test_text_takes_status_encoding_and_headers() -> None:
    response = text("héllo", status=201, encoding="latin-1", headers={"x-extra": "1"})
    assert response == {
        "status": 201,
        "headers": {"content-type": "text/plain; charset=latin-1", "x-extra": "1"},
        "body": b"h\xe9llo",
    }


def test_text_headers_may_replace_the_content_type() -> None:
    assert text("<p/>", headers={"content-type": "text/html"})["headers"] == {
        "content-type": "text/html"
    }


def test_text_defaults_to_an_empty_body() -> None:
    assert text()["body"] == b""


@pytest.mark.parametrize(
    "data", [{"a": [1, 2.5, None, True]}, [], "text", 3, None, {"ünï": "cödé ✓"}]
)
def test_json_round_trips(data: Any) -> None:
    response = json(data)
    assert response["status"] == 200
    assert response["headers"] == {"content-type": "application/json"}
    assert std_json.loads(response["body"].decode("utf-8")) == data


def test_json_response_is_json_under_a_name_that_hides_no_module() -> None:
    assert json is json_response  # 2.0's name keeps working
    assert json_response({"a": 1}, status=201) == {
        "status": 201,
        "headers": {"content-type": "application/json"},
        "body": b'{"a":1}',
    }


def test_json_keeps_its_status() -> None:  # shallot 2.0 dropped it and always sent 200
    assert json({"error": "gone"}, status=410)["status"] == 410


def test_json_takes_headers() -> None:
    assert json([], headers={"cache-control": "no-store"})["headers"] == {
        "content-type": "application/json",
        "cache-control": "no-store",
    }


@pytest.mark.parametrize("name", ["\ud800", "a\udfffb", "\udbff\ud800", "\udc00é😀"])
def test_json_writes_lone_surrogates_as_escapes(name: str) -> None:
    # Python's JSON parser accepts "\ud800"; UTF-8 cannot hold it (issue 13).
    body = json({"name": name, name: 1})["body"]
    assert std_json.loads(body.decode("utf-8")) == {"name": name, name: 1}


async def test_a_lone_surrogate_echoed_as_json_is_answered_not_500() -> None:
    async def echo(request: Request) -> Response:
        return json(std_json.loads(request["body"]))

    async with TestClient(build_server(echo)) as client:
        response = await client.post("/", content=b'{"name": "\\ud800"}')
    assert response.status_code == 200
    assert response.content == b'{"name":"\\ud800"}'
    assert response.json() == {"name": "\ud800"}


@pytest.mark.parametrize("name", ["Content-Type", "CONTENT-TYPE", "content-Type"])
def test_text_and_json_take_a_content_type_in_any_case(name: str) -> None:
    # Header names are case-insensitive (RFC 9110 §5.1): one content type, the caller's.
    assert text("<p/>", headers={name: "text/html", "x-a": "1"})["headers"] == {
        name: "text/html",
        "x-a": "1",
    }
    assert json([], headers={name: "application/ld+json"})["headers"] == {
        name: "application/ld+json"
    }


async def test_a_content_type_in_another_case_is_sent_once() -> None:
    async def handler(request: Request) -> Response:
        return text("<p>hi</p>", headers={"Content-Type": "text/html; charset=utf-8"})

    async with TestClient(build_server(handler)) as client:
        response = await client.get("/")
    assert response.headers.get_list("content-type") == ["text/html; charset=utf-8"]


def test_json_rejects_what_it_cannot_serialize() -> None:
    with pytest.raises(TypeError):
        json({"when": object()})


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        lambda children: st.lists(children) | st.dictionaries(st.text(), children),
        max_leaves=20,
    )
)
def test_json_writes_what_the_standard_library_writes(data: Any) -> None:
    expected = std_json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    assert json(data)["body"] == expected.encode()


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_json_refuses_nan_and_infinity(number: float) -> None:
    # Python writes them as NaN and Infinity, which are not JSON (RFC 8259 §6): JSON.parse
    # in a browser refuses the whole body.
    with pytest.raises(ValueError, match="not JSON compliant"):
        json({"value": [1.5, number]})
    with pytest.raises(ValueError, match="not JSON compliant"):
        ws_send_json(number)


async def test_a_handler_answering_nan_gets_500_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def mean(request: Request) -> Response:
        numbers = std_json.loads(request["body"])
        return json({"mean": sum(numbers) / len(numbers) if numbers else float("nan")})

    async with TestClient(build_server(mean)) as client:
        assert (await client.post("/", json=[1, 2])).json() == {"mean": 1.5}
        response = await client.post("/", json=[])
    assert (response.status_code, response.text) == (500, "Internal Server Error")
    errors = [r for r in caplog.records if r.name == "shallot" and r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], ValueError)


def test_json_refuses_data_that_contains_itself() -> None:
    looped: list[Any] = []
    looped.append(looped)
    with pytest.raises(ValueError, match="refers to itself"):
        json({"loop": looped})


# --- the small answers ------------------------------------------------------------------


def test_respond404() -> None:
    assert respond404() == text("Not Found", status=404)
    assert respond404("no such user")["body"] == b"no such user"


def test_respond400() -> None:
    assert respond400() == text("Bad Request", status=400)
    assert respond400("missing name")["body"] == b"missing name"


def test_respond_not_modified_has_no_body() -> None:
    assert respond_not_modified() == {"status": 304, "headers": {}}
    headers = {"etag": '"abc"'}
    response = respond_not_modified(headers)
    assert response == {"status": 304, "headers": {"etag": '"abc"'}}
    assert response["headers"] is not headers  # the caller's dict is never changed


async def test_small_answers_are_sent_as_built() -> None:
    async def handler(request: Request) -> Response:
        if request["path"] == "/missing":
            return respond404()
        if request["path"] == "/bad":
            return respond400("bad input")
        return respond_not_modified({"etag": '"v1"'})

    async with TestClient(build_server(handler)) as client:
        missing = await client.get("/missing")
        bad = await client.get("/bad")
        cached = await client.get("/cached")
    assert (missing.status_code, missing.text) == (404, "Not Found")
    assert (bad.status_code, bad.text) == (400, "bad input")
    assert (cached.status_code, cached.content) == (304, b"")
    assert cached.headers["etag"] == '"v1"'
    assert "content-length" not in cached.headers


# --- filestream -------------------------------------------------------------------------


async def test_filestream_reads_the_file_in_chunks(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    data = bytes(range(256)) * 40  # 10240 bytes
    path.write_bytes(data)
    response = filestream(path, chunk_size=4096, headers={"content-type": "x/y"})
    assert response["status"] == 200
    assert response["headers"] == {"content-type": "x/y"}
    chunks = [chunk async for chunk in response["stream"]]
    assert [len(chunk) for chunk in chunks] == [4096, 4096, 2048]
    assert b"".join(chunks) == data


async def test_filestream_of_an_empty_file_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert await collect(filestream(str(path))) == b""


async def test_filestream_takes_a_status(tmp_path: Path) -> None:
    path = tmp_path / "part"
    path.write_bytes(b"abc")
    assert filestream(path, status=206)["status"] == 206


async def test_filestream_is_served(tmp_path: Path) -> None:
    path = tmp_path / "page.txt"
    path.write_text("line\n" * 10000)

    async def handler(request: Request) -> Response:
        return filestream(path, headers={"content-type": "text/plain"})

    async with TestClient(build_server(handler)) as client:
        response = await client.get("/")
        head = await client.head("/")
    assert response.status_code == 200
    assert response.text == "line\n" * 10000
    assert head.status_code == 200
    assert head.content == b""


async def test_filestream_of_a_missing_file_gets_500(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def handler(request: Request) -> Response:
        return filestream(tmp_path / "missing")

    async with TestClient(build_server(handler)) as client:
        response = await client.get("/")
    assert response.status_code == 500
    assert response.text == "Internal Server Error"
    errors = [r for r in caplog.records if r.name == "shallot" and r.levelno == logging.ERROR]
    assert len(errors) == 1


async def test_filestream_that_is_never_sent_opens_nothing(tmp_path: Path) -> None:
    response = filestream(tmp_path / "missing")  # built, then replaced by a middleware, say
    await response["stream"].aclose()


# --- websocket messages -----------------------------------------------------------------


def test_ws_send_text_and_bytes() -> None:
    assert ws_send("hi") == {"type": "websocket.send", "text": "hi"}
    assert ws_send(b"\x00") == {"type": "websocket.send", "bytes": b"\x00"}


def test_ws_send_rejects_other_types() -> None:
    with pytest.raises(TypeError, match="int"):
        ws_send(5)  # type: ignore[arg-type]


def test_ws_send_json_sends_compact_json_as_text() -> None:
    assert ws_send_json({"type": "joined", "nick": "ada é"}) == {
        "type": "websocket.send",
        "text": '{"type":"joined","nick":"ada é"}',
    }
    assert ws_send_json([1, None]) == {"type": "websocket.send", "text": "[1,null]"}


def test_ws_send_json_refuses_what_is_not_json() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        ws_send_json({"when": object()})
    looped: list[Any] = []
    looped.append(looped)
    with pytest.raises(ValueError, match="refers to itself"):
        ws_send_json(looped)


def test_ws_close() -> None:
    assert ws_close() == {"type": "websocket.close", "code": 1000, "reason": ""}
    assert ws_close(4001, "bye") == {"type": "websocket.close", "code": 4001, "reason": "bye"}


@pytest.mark.parametrize("code", [999, 1004, 1005, 1006, 1015, 2000, 5000])
def test_ws_close_rejects_codes_that_may_not_be_sent(code: int) -> None:
    with pytest.raises(ValueError, match=str(code)):
        ws_close(code)


def test_ws_close_checks_types_and_reason_length() -> None:
    with pytest.raises(TypeError):
        ws_close("1000")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ws_close(1000, b"bytes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="123"):
        ws_close(1000, "é" * 62)
    assert ws_close(1000, "x" * 123)["reason"] == "x" * 123


def test_ws_accept() -> None:
    assert ws_accept() == {"type": "websocket.accept", "subprotocol": None}
    assert ws_accept("chat", {"X-Token": "t"}) == {
        "type": "websocket.accept",
        "subprotocol": "chat",
        "headers": [(b"x-token", b"t")],
    }
    assert ws_accept(headers=[("a", "1"), ("a", "2")])["headers"] == [(b"a", b"1"), (b"a", b"2")]
    # the raw form's bytes pairs, as docs/spec.md gives them, are taken as they are
    assert ws_accept(headers=[(b"X-B", b"2")])["headers"] == [(b"x-b", b"2")]
    # bytes-like parts too, as response headers take them
    odd: Any = [(bytearray(b"x-c"), memoryview(b"3"))]
    assert ws_accept(headers=odd)["headers"] == [(b"x-c", b"3")]


def test_ws_accept_refuses_a_subprotocol_that_is_not_a_str() -> None:
    # b"chat" used to open the connection without a subprotocol, silently
    with pytest.raises(TypeError, match="subprotocol must be a str"):
        ws_accept(b"chat")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ([("x", "1\r\ny: 2")], ValueError),
        ([("bad name", "1")], ValueError),
        ([("x", "€")], ValueError),  # not latin-1
        ([("x", 1)], TypeError),
        (["x"], TypeError),
        # the server writes these itself: twice, the client refuses the answer
        ({"Sec-WebSocket-Protocol": "chat"}, ValueError),
        ([(b"upgrade", b"websocket")], ValueError),
        ([("sec-websocket-accept", "x")], ValueError),
    ],
)
def test_ws_accept_refuses_headers_that_cannot_go_out(headers: Any, error: type) -> None:
    with pytest.raises(error):
        ws_accept(headers=headers)


async def test_standard_disconnect_logs_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="shallot"):
        await standard_disconnect({"type": "websocket", "path": "/chat"})
    (record,) = caplog.records
    assert record.levelno == logging.DEBUG
    assert "/chat" in record.getMessage()


# --- the ready-made default handler (shallot.handlers) ----------------------------------


async def test_standard_not_found_answers_404() -> None:
    response = await standard_not_found({"method": "GET", "path": "/nope"})
    assert response == text("Not Found", status=404)


async def test_standard_not_found_answers_405_when_routing_knew_the_path() -> None:
    response = await standard_not_found({"method": "DELETE", "allowed_methods": ["GET", "POST"]})
    assert response["status"] == 405
    assert response["headers"]["allow"] == "GET, POST"


async def test_standard_not_found_is_a_plain_404_over_http() -> None:
    async with TestClient(build_server(standard_not_found)) as client:
        response = await client.get("/anything")
    assert (response.status_code, response.text) == (404, "Not Found")


async def test_filestream_carries_an_empty_body_beside_its_stream(tmp_path: Path) -> None:
    # shallot 2.0's filestream set both keys; 2.0 middlewares read response["body"] (issue 13)
    path = tmp_path / "f.txt"
    path.write_bytes(b"abc")
    response = filestream(path)
    assert response["body"] == b""
    assert await collect(response) == b"abc"
