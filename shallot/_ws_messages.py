"""Websocket message rules, pure and synchronous: no I/O, no event loop.

Turns what a handler yields into ASGI ``websocket.send`` / ``websocket.close`` messages (and
refuses anything else), ASGI ``websocket.receive`` messages into ``str | bytes``, text into the
JSON value it holds (``wrap_json`` parses request bodies with the same rule), and classifies
what ``on_connect`` returned. The close-code rules are RFC 6455 §7.4.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, Literal

from ._prepare import check_header
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


def _finite(number: str) -> float:
    # Python's parser turns a number too large for a float (1e999) into inf, which no JSON
    # encoder can give back: an echo of it would fail in the handler, not here.
    value = float(number)
    if math.isinf(value):
        raise ValueError("number out of range")
    return value


#: The one JSON parser for what clients send (websocket messages, ``wrap_json`` bodies): the
#: standard library's, refusing ``NaN``, ``Infinity``, ``-Infinity`` and numbers beyond a
#: float. Made once: ``json.loads`` with an option builds a decoder per call.
_DECODER = json.JSONDecoder(parse_constant=_not_json, parse_float=_finite)


#: The start of an escape of a surrogate, half of a pair or alone (U+D800 to U+DFFF).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _lone_surrogate(value: Any) -> bool:
    """Whether a decoded JSON value holds a string with half a surrogate pair (``"\\ud800"``):
    valid JSON text (RFC 8259 §8.2 leaves it open), but no UTF-8 can carry it, so it would fail
    where the handler sends it on. Walks without recursion: the value may be deeply nested."""
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) is str:
            if not item.isascii():
                try:
                    item.encode()
                except UnicodeEncodeError:
                    return True
        elif type(item) is list:
            stack.extend(item)
        elif type(item) is dict:
            stack.extend(item)
            stack.extend(item.values())
    return False


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
        value = _DECODER.decode(payload)
        # only an escape can make a surrogate (text that came as UTF-8 holds none), and most
        # escapes are of other characters: the value is walked only when one may be a half
        if (
            "\\u" not in payload
            or _SURROGATE_ESCAPE.search(payload) is None
            or not _lone_surrogate(value)
        ):
            return value
        reason = "invalid JSON: a string holds half a surrogate pair"
    except ValueError as error:  # JSONDecodeError; RecursionError is not a ValueError
        why = getattr(error, "msg", error)
        if "int_max_str_digits" in str(why):  # Python's advice to its user, not the client's
            why = "number too long"
        reason = f"invalid JSON: {why}"
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


#: Headers of a handshake's answer that the server writes itself (RFC 6455 §4.2.2): given
#: twice, the client refuses the answer, and hypercorn fails on a ``sec-websocket-protocol``.
_SERVERS_OWN = {
    b"sec-websocket-protocol": "give the subprotocol as ws_accept(subprotocol=...)",
    b"sec-websocket-accept": "the server computes it from the client's key",
    b"sec-websocket-extensions": "the server negotiates extensions",
    b"upgrade": "the server sends it",
    b"connection": "the server sends it",
}


def _as_bytes(part: Any) -> Any:
    if isinstance(part, str):
        return part.encode("latin-1")
    return bytes(part) if isinstance(part, (bytearray, memoryview)) else part


def check_subprotocol(subprotocol: Any) -> None:
    """Checks an accept's subprotocol: a str, or None for none.

    Raises:
        TypeError: it is something else (``b"chat"`` would open without one, silently).
    """
    if subprotocol is not None and not isinstance(subprotocol, str):
        raise TypeError(f"subprotocol must be a str or None, not {subprotocol!r}")


def accept_headers(headers: Any) -> list[tuple[bytes, bytes]]:
    """Returns the extra headers of a handshake's answer as ASGI pairs, names in lower case,
    from a mapping or a list of pairs, each name and value str (latin-1) or bytes.

    Raises:
        TypeError: they are not pairs of str or bytes.
        ValueError: a name is not a token or is one the server writes itself (``upgrade``,
            ``sec-websocket-protocol``, ...), a value holds a control character other than
            tab, or a str does not fit latin-1.
    """
    items = headers.items() if isinstance(headers, Mapping) else headers
    pairs = []
    for pair in items:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise TypeError(f"a header must be a (name, value) pair, not {pair!r}")
        key, data = _as_bytes(pair[0]), _as_bytes(pair[1])
        if not isinstance(key, bytes) or not isinstance(data, bytes):
            raise TypeError(f"a header's name and value must be str or bytes, not {pair!r}")
        check_header(key, data)
        key = key.lower()
        if key in _SERVERS_OWN:
            raise ValueError(f"header {key!r} may not be set here: {_SERVERS_OWN[key]}")
        pairs.append((key, data))
    return pairs


def classify_connect(result: Any, offered: list[str]) -> tuple[Verdict, Message | str]:
    """Returns what ``on_connect``'s result means: ``("accept", message)``,
    ``("close", message)``, ``("http", response)`` or ``("invalid", why)``."""
    if not isinstance(result, dict):
        return "invalid", f"on_connect returned {result!r}; return ws_accept() or ws_close()"
    kind = result.get("type")
    if kind == "websocket.accept":
        subprotocol = result.get("subprotocol")
        try:
            check_subprotocol(subprotocol)
        except TypeError as error:
            return "invalid", f"on_connect's accept is wrong: {error}"
        if subprotocol is not None and subprotocol not in offered:
            # RFC 6455 §4.2.2: a server that agrees to none of the client's subprotocols
            # answers without one, and the client decides whether that will do.
            subprotocol = None
        accept: Message = {"type": "websocket.accept", "subprotocol": subprotocol}
        headers = result.get("headers")
        if headers:
            try:
                accept["headers"] = accept_headers(headers)
            except Exception as error:  # a generator of pairs may raise anything
                return "invalid", f"on_connect's accept has bad headers: {error}"
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
