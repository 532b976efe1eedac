"""Websocket message rules, pure and synchronous: no I/O, no event loop.

Turns what a handler yields into ASGI ``websocket.send`` / ``websocket.close`` messages (and
refuses anything else), ASGI ``websocket.receive`` messages into ``str | bytes``, text into the
JSON value it holds (``wrap_json`` parses request bodies with the same rule), and classifies
what ``on_connect`` returned. The close-code rules are RFC 6455 §7.4.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from ._types import Message

#: Close codes shallot sends itself.
NORMAL = 1000
GOING_AWAY = 1001
INVALID_PAYLOAD = 1007  # data of the wrong kind: not JSON where JSON was expected
POLICY_VIOLATION = 1008  # over the rate limit, or too slow to read what is sent
MESSAGE_TOO_BIG = 1009
INTERNAL_ERROR = 1011
TRY_AGAIN_LATER = 1013  # max_connections, where a handshake cannot be answered with 503
#: What the ASGI server reports for a connection that dropped without a close frame.
ABNORMAL = 1006


def sendable_code(code: Any) -> bool:
    """Returns whether ``code`` may be sent in a close frame (RFC 6455 §7.4.1-2)."""
    return type(code) is int and (
        code == 1000
        or (1001 <= code <= 1014 and code not in (1004, 1005, 1006))
        or 3000 <= code <= 4999
    )


def check_close(code: Any, reason: Any) -> None:
    """Checks a close frame's code and reason: the one place for the rule.

    Raises:
        TypeError: ``code`` is not an int or ``reason`` not a str.
        ValueError: ``code`` may not be sent in a close frame (RFC 6455 §7.4), or ``reason``
            is longer than 123 bytes in UTF-8 (RFC 6455 §5.5).
    """
    if type(code) is not int:
        raise TypeError(f"close code must be an int, not {type(code).__name__}")
    if not sendable_code(code):
        raise ValueError(f"close code {code} may not be sent (RFC 6455 §7.4)")
    if not isinstance(reason, str):
        raise TypeError(f"close reason must be a str, not {type(reason).__name__}")
    if len(reason.encode()) > 123:
        raise ValueError("close reason is longer than 123 bytes (RFC 6455 §5.5)")


def outgoing(message: Any) -> Message:
    """Returns the ASGI message for what a handler yielded.

    Raises:
        TypeError: it is not a ``websocket.send`` or ``websocket.close`` message dict.
        ValueError: its close code may not be sent, or its reason is too long.
    """
    if not isinstance(message, dict):
        raise TypeError(
            f"a websocket handler yielded {message!r}; yield ws_send(...) or ws_close(...)"
        )
    kind = message.get("type")
    if kind == "websocket.send":
        text, data = message.get("text"), message.get("bytes")
        if isinstance(text, str) and data is None:
            return {"type": "websocket.send", "text": text}
        if isinstance(data, (bytes, bytearray, memoryview)) and text is None:
            return {"type": "websocket.send", "bytes": bytes(data)}
        raise TypeError(
            f"websocket.send needs exactly one of 'text' (str) or 'bytes' (bytes), got {message!r}"
        )
    if kind == "websocket.close":
        code = message.get("code", NORMAL)
        reason = message.get("reason") or ""
        try:
            check_close(code, reason)
        except TypeError as error:  # a yielded dict: a wrong value, not a wrong call
            raise ValueError(str(error)) from None
        return {"type": "websocket.close", "code": code, "reason": reason}
    raise TypeError(
        f"a websocket handler yielded a {kind!r} message; only websocket.send and "
        "websocket.close can be sent once the connection is open"
    )


def incoming(message: Message) -> str | bytes:
    """Returns the payload of a ``websocket.receive`` message.

    Raises:
        ValueError: it carries neither text nor bytes (the server broke ASGI).
    """
    text = message.get("text")
    if text is not None:
        return str(text)
    data = message.get("bytes")
    if data is not None:
        return bytes(data)
    raise ValueError("websocket.receive carried neither 'text' nor 'bytes'")


def _not_json(constant: str) -> Any:
    # Python's parser takes these by default; RFC 8259 §6 does not, nor does JSON.parse.
    raise ValueError(f"{constant} is not JSON")


#: The one JSON parser for what clients send (websocket messages, ``wrap_json`` bodies): the
#: standard library's, refusing ``NaN``, ``Infinity`` and ``-Infinity``. Made once: ``json.loads``
#: with an option builds a decoder per call.
_DECODER = json.JSONDecoder(parse_constant=_not_json)


def json_value(payload: str | bytes) -> Any:
    """Returns the JSON value a text holds: a websocket text message (``receiver.json()``,
    issue 16) or a decoded request body (``wrap_json``).

    Raises:
        ValueError: it is a binary frame, or not JSON (RFC 8259: ``NaN`` and ``Infinity`` are
            not); the message is a close reason (at most 123 bytes in UTF-8).
    """
    if not isinstance(payload, str):
        raise ValueError("expected JSON text, got a binary frame")
    try:
        return _DECODER.decode(payload)
    except ValueError as error:  # JSONDecodeError; RecursionError is not a ValueError
        reason = f"invalid JSON: {getattr(error, 'msg', error)}"
    except RecursionError:
        reason = "invalid JSON: nested too deeply"
    raise ValueError(reason.encode()[:123].decode(errors="ignore"))


def size_of(payload: str | bytes) -> int:
    """Returns the size a payload is counted with: bytes, or UTF-8 bytes of a str (bounded by
    four bytes per character, so a cheap upper estimate is used for long texts)."""
    if isinstance(payload, bytes):
        return len(payload)
    return len(payload) if payload.isascii() else len(payload.encode())


Verdict = Literal["accept", "close", "http", "invalid"]


def classify_connect(result: Any, offered: list[str]) -> tuple[Verdict, Message | str]:
    """Returns what ``on_connect``'s result means: ``("accept", message)``,
    ``("close", message)``, ``("http", response)`` or ``("invalid", why)``."""
    if not isinstance(result, dict):
        return "invalid", f"on_connect returned {result!r}; return ws_accept() or ws_close()"
    kind = result.get("type")
    if kind == "websocket.accept":
        subprotocol = result.get("subprotocol")
        if subprotocol is not None and subprotocol not in offered:
            # RFC 6455 §4.2.2: a server that agrees to none of the client's subprotocols
            # answers without one, and the client decides whether that will do.
            subprotocol = None
        accept: Message = {"type": "websocket.accept", "subprotocol": subprotocol}
        headers = result.get("headers")
        if headers:
            accept["headers"] = list(headers)
        return "accept", accept
    if kind == "websocket.close":
        return "close", {
            "type": "websocket.close",
            "code": result.get("code", NORMAL),
            "reason": result.get("reason") or "",
        }
    if kind is None and "status" in result:
        return "http", result
    return "invalid", f"on_connect returned {result!r}; return ws_accept() or ws_close()"
