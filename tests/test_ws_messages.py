"""The pure websocket message rules: no event loop needed."""

from __future__ import annotations

from typing import Any

import pytest

from shallot._ws_messages import (
    classify_connect,
    incoming,
    json_value,
    outgoing,
    sendable_code,
    size_of,
)
from shallot.response import ws_accept, ws_close, ws_send


@pytest.mark.parametrize(
    ("code", "ok"),
    [
        (1000, True),
        (1001, True),
        (1004, False),
        (1005, False),
        (1006, False),
        (1011, True),
        (1015, False),
        (2999, False),
        (3000, True),
        (4999, True),
        (5000, False),
        ("1000", False),
        (True, False),
    ],
)
def test_sendable_codes_follow_rfc_6455(code: Any, ok: bool) -> None:
    assert sendable_code(code) is ok


def test_outgoing_accepts_helpers_and_raw_dicts() -> None:
    assert outgoing(ws_send("hi")) == {"type": "websocket.send", "text": "hi"}
    assert outgoing(ws_send(b"\x00")) == {"type": "websocket.send", "bytes": b"\x00"}
    assert outgoing({"type": "websocket.send", "text": "raw"})["text"] == "raw"
    assert outgoing(ws_close(4001, "bye")) == {
        "type": "websocket.close",
        "code": 4001,
        "reason": "bye",
    }
    assert outgoing({"type": "websocket.close"})["code"] == 1000


@pytest.mark.parametrize(
    "bad",
    [
        "text",
        b"bytes",
        None,
        {"type": "websocket.send"},
        {"type": "websocket.accept"},
        {"type": "websocket.send", "text": "a", "bytes": b"b"},
        {"type": "websocket.send", "text": 3},
    ],
)
def test_outgoing_refuses_what_cannot_be_sent(bad: Any) -> None:
    with pytest.raises(TypeError):
        outgoing(bad)


def test_outgoing_refuses_reserved_close_codes() -> None:
    with pytest.raises(ValueError, match="1006"):
        outgoing({"type": "websocket.close", "code": 1006})


def test_incoming_payloads() -> None:
    assert incoming({"type": "websocket.receive", "text": "é"}) == "é"
    assert incoming({"type": "websocket.receive", "bytes": b"x", "text": None}) == b"x"
    with pytest.raises(ValueError, match="neither"):
        incoming({"type": "websocket.receive"})


def test_json_value_parses_json_text() -> None:
    assert json_value('{"a": [1, 2.5e3, -0.5, null, "é"]}') == {"a": [1, 2500.0, -0.5, None, "é"]}


@pytest.mark.parametrize(
    ("text", "constant"),
    [("NaN", "NaN"), ("Infinity", "Infinity"), ("[1, -Infinity]", "-Infinity")],
)
def test_json_value_refuses_nan_and_infinity(text: str, constant: str) -> None:
    # Python's parser takes them; RFC 8259 §6 and JSON.parse do not.
    with pytest.raises(ValueError, match=f"^invalid JSON: {constant} is not JSON$"):
        json_value(text)


@pytest.mark.parametrize("text", ["1e999", "[-1e999]", '{"a": 1' + "0" * 400 + ".5}"])
def test_json_value_refuses_numbers_beyond_a_float(text: str) -> None:
    # Python's parser makes inf of them, which no encoder gives back: an echo would fail.
    with pytest.raises(ValueError, match=r"^invalid JSON: number out of range$"):
        json_value(text)


@pytest.mark.parametrize("text", ['"\\ud800"', '["a", {"\\udfff": 1}]', '{"k": ["\\ud83d x"]}'])
def test_json_value_refuses_half_a_surrogate_pair(text: str) -> None:
    # No UTF-8 carries it: sent on, it would fail inside the server.
    with pytest.raises(ValueError, match=r"^invalid JSON: a string holds half a surrogate pair$"):
        json_value(text)


def test_json_value_names_a_number_too_long_without_pythons_advice() -> None:
    with pytest.raises(ValueError, match=r"^invalid JSON: number too long$"):
        json_value("1" * 5_000)


def test_json_value_takes_escaped_pairs_and_characters() -> None:
    assert json_value('["\\ud83d\\ude00", "\\u00e9", "\\n"]') == ["\U0001f600", "é", "\n"]
    assert json_value("[1e308, 2.5]") == [1e308, 2.5]


def test_size_counts_utf8_bytes() -> None:
    assert size_of("abc") == 3
    assert size_of("é") == 2
    assert size_of(b"\x00" * 5) == 5


def test_classify_connect() -> None:
    assert classify_connect(ws_accept(), [])[0] == "accept"
    assert classify_connect(ws_accept("chat"), ["chat"])[0] == "accept"
    # a subprotocol the client did not offer is not agreed to: accepted without one
    assert classify_connect(ws_accept("chat"), ["other"]) == (
        "accept",
        {"type": "websocket.accept", "subprotocol": None},
    )
    assert classify_connect(ws_close(), [])[0] == "close"
    assert classify_connect({"status": 401, "body": b"no"}, [])[0] == "http"
    assert classify_connect(None, [])[0] == "invalid"
    # the raw form: str or bytes pairs, encoded and checked as ws_accept does
    raw = {"type": "websocket.accept", "headers": [("X-A", "1"), (b"x-b", b"2")]}
    assert classify_connect(raw, []) == (
        "accept",
        {
            "type": "websocket.accept",
            "subprotocol": None,
            "headers": [(b"x-a", b"1"), (b"x-b", b"2")],
        },
    )

    def pairs_that_fail() -> Any:
        yield (b"x", b"1")
        raise RuntimeError("the pairs could not be made")

    for headers in ([(b"x", b"1\r\ny: 2")], [("x", 1)], "x-a", pairs_that_fail()):
        verdict, why = classify_connect({"type": "websocket.accept", "headers": headers}, [])
        assert verdict == "invalid"
        assert str(why).startswith("on_connect's accept has bad headers: ")
    for subprotocol in (b"chat", 5, ["chat"]):
        accept = {"type": "websocket.accept", "subprotocol": subprotocol}
        assert classify_connect(accept, ["chat"])[0] == "invalid"
    assert classify_connect({"type": "websocket.send"}, [])[0] == "invalid"


def test_ws_close_validates() -> None:
    with pytest.raises(ValueError, match="1005"):
        ws_close(1005)
    with pytest.raises(TypeError):
        ws_close("1000")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="123"):
        ws_close(1000, "x" * 124)
    with pytest.raises(TypeError):
        ws_send(3)  # type: ignore[arg-type]
