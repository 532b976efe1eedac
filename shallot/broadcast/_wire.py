"""How a message travels through Redis: its bytes, with a two-byte tag keeping its type (text
or bytes). A payload without the tag (published by another Redis client) arrives as bytes."""

from __future__ import annotations

_TEXT = b"\x00t"
_BINARY = b"\x00b"


def encode(message: str | bytes) -> bytes:
    """Returns the payload that carries ``message`` and its type."""
    if isinstance(message, str):
        return _TEXT + message.encode("utf-8")
    return _BINARY + message


def decode(payload: bytes) -> str | bytes:
    """Returns the message a payload carries (a foreign payload as it came)."""
    tag = payload[:2]
    if tag == _TEXT:
        return payload[2:].decode("utf-8", "replace")
    if tag == _BINARY:
        return payload[2:]
    return payload
