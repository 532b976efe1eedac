"""A response dict made into what ``http.response.start`` and ``http.response.body`` carry:
``prepare`` checks it and encodes its status, headers and body.

The common shape (an int status, a dict of str headers, a bytes body) takes one pass, with the
header pairs and content-lengths it has seen before already encoded (issue 18); anything else
takes the general path, which says exactly what is wrong (``InvalidResponse``).
"""

from __future__ import annotations

from typing import Any

#: What a header value may hold: visible ASCII, space and tab (RFC 9110 §5.5), then obs-text
#: (bytes 0x80-0xFF, which latin-1 and UTF-8 values use): no CR, LF, NUL or other control.
_FIELD_VALUE = b"\t" + bytes(range(0x20, 0x7F)) + bytes(range(0x80, 0x100))
#: What a header name may hold: a token (RFC 9110 §5.6.2).
_TOKEN = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class InvalidResponse(Exception):
    """A handler returned something shallot cannot send."""


def no_content(status: int) -> bool:
    """Whether a response of ``status`` carries no content, nor a content-length: 1xx, 204,
    304 (RFC 9110 §6.4.1, §8.6). The fast path of ``prepare`` tests it inline."""
    return status < 200 or status == 204 or status == 304


def check_header(key: bytes, data: bytes) -> None:
    """Refuses a header that would not go out as one header: a name that is no token, a
    value with a control character other than tab (CR, LF and NUL among them; RFC 9110
    §5.5). HTTP/1's h11 would raise past shallot; HTTP/2 would send it, and whatever turns
    it into HTTP/1 further on would split it.

    Raises:
        ValueError: what is wrong with it.
    """
    if not key or key.translate(None, _TOKEN):
        raise ValueError(f"header name {key!r} is not a token (RFC 9110 §5.6.2)")
    if data.translate(None, _FIELD_VALUE):
        raise ValueError(f"header {key!r} has a control character in its value {data!r}")


def _encode_headers(headers: Any) -> tuple[list[tuple[bytes, bytes]], bool]:
    """Returns the headers as ASGI pairs and whether a content-length is among them."""
    items = headers.items() if isinstance(headers, dict) else headers
    raw: list[tuple[bytes, bytes]] = []
    has_length = False
    for name, value in items:
        key = name.encode("latin-1") if type(name) is str else bytes(name)
        if type(value) is str or isinstance(value, str):
            # latin-1 is what HTTP carries; shallot 2.0 sent UTF-8, which servers pass on as
            # obs-text (RFC 9110 §5.5), so values latin-1 cannot hold keep working.
            try:
                data = value.encode("latin-1")
            except UnicodeEncodeError:
                data = value.encode()
        elif isinstance(value, (bytes, bytearray)):
            data = bytes(value)
        elif isinstance(value, int):  # content-length given as a number
            data = str(value).encode()
        else:
            raise InvalidResponse(f"header {name!r} has a {type(value).__name__} value")
        check_header(key, data)
        if len(key) == 14 and key.lower() == b"content-length":
            has_length = True
        raw.append((key, data))
    return raw, has_length


#: Response header pairs already encoded, (str name, str value) -> (bytes, bytes): handlers
#: send the same few (content-type, cache-control, ...) again and again. Bounded; values that
#: differ per response (etags, locations) simply stop being remembered once it is full.
_PAIRS: dict[tuple[str, str], tuple[bytes, bytes]] = {}
_MAX_PAIRS = 256
_MAX_PAIR_VALUE = 128
#: The content-length pairs of bodies up to 1 KiB, made on first use.
_LENGTHS: dict[int, tuple[bytes, bytes]] = {}


def _content_length(length: int) -> tuple[bytes, bytes]:
    pair = _LENGTHS.get(length)
    if pair is None:
        pair = (b"content-length", b"%d" % length)
        if length <= 1024:
            _LENGTHS[length] = pair
    return pair


def prepare(response: Any) -> tuple[int, list[tuple[bytes, bytes]], bytes | None, Any]:
    """Returns (status, ASGI headers, body, stream) of a response dict.

    Raises:
        InvalidResponse: it is not a response shallot can send.
    """
    if type(response) is dict:
        # The common shape (int status, str->str header dict, bytes body) in one pass, with
        # the header pairs and content-lengths seen before already encoded (issue 18).
        body, status = response.get("body"), response.get("status")
        if type(body) is bytes and type(status) is int and 200 <= status <= 999:
            headers = response.get("headers")
            if "stream" in response:
                pass
            elif headers is None:
                if no_content(status):
                    return status, [], b"", None
                return status, [_LENGTHS.get(len(body)) or _content_length(len(body))], body, None
            elif type(headers) is dict:
                raw = []
                length = status != 204 and status != 304  # whether to add a content-length
                pairs = _PAIRS
                try:
                    for item in headers.items():
                        pair = pairs.get(item)
                        if pair is None:
                            key, value = item
                            pair = (key.encode("latin-1"), value.encode("latin-1"))
                            check_header(*pair)  # once: then remembered, or not at all
                            if len(key) == 14 and key.lower() == "content-length":
                                length = False  # never remembered: a hit must not hide it
                            elif len(pairs) < _MAX_PAIRS and len(value) <= _MAX_PAIR_VALUE:
                                pairs[item] = pair
                        raw.append(pair)
                except (AttributeError, TypeError, UnicodeEncodeError, ValueError):
                    pass  # not all str, not latin-1, or unusable: the general path says which
                else:
                    if length:
                        raw.append(_LENGTHS.get(len(body)) or _content_length(len(body)))
                    elif status == 204 or status == 304:
                        body = b""  # these cannot carry content (RFC 9110 §6.4.1)
                    return status, raw, body, None
    if not isinstance(response, dict):
        raise InvalidResponse(f"returned {response!r}, not a response dict")
    status = response.get("status")
    if type(status) is not int or not 100 <= status <= 999:
        raise InvalidResponse(f"returned status {status!r}; it must be an int from 100 to 999")
    try:
        headers, has_length = _encode_headers(response.get("headers") or ())
    except (UnicodeEncodeError, ValueError, TypeError) as error:
        raise InvalidResponse(f"returned unusable headers: {error}") from None
    stream = response.get("stream")
    if stream is not None:
        if not hasattr(stream, "__aiter__"):
            raise InvalidResponse(f"returned a stream that is not async iterable: {stream!r}")
        return status, headers, None, stream
    body = response.get("body")
    if body is None:
        body = b""
    elif isinstance(body, str):
        body = body.encode()
    elif isinstance(body, (bytearray, memoryview)):
        body = bytes(body)
    elif not isinstance(body, bytes):
        raise InvalidResponse(f"returned a {type(body).__name__} body; it must be bytes")
    if no_content(status):
        # What a body holds is dropped, as HTTP/1 servers do on the wire, so the test client
        # sees what a browser would; and no content-length.
        return status, headers, b"", None
    if not has_length:
        headers.append((b"content-length", str(len(body)).encode()))
    return status, headers, body, None
