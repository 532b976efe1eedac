"""What every streamed response body shares: its chunks as bytes, and closing it in the end.

A handler may stream ``bytes``, ``str`` (sent as UTF-8), ``bytearray`` or ``memoryview``
chunks. Whoever stops iterating a stream closes it, so that its ``finally`` runs, shielded and
bounded: a response that ends, however it ends, never leaves a generator suspended.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio

logger = logging.getLogger("shallot")

#: How long closing a stream may take (its ``finally`` blocks) before it is abandoned.
CLEANUP_TIMEOUT = 5.0


def as_bytes(chunk: Any) -> bytes | None:
    """Returns ``chunk`` as bytes, or ``None`` when it is not a kind of chunk a stream may yield."""
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, str):
        return chunk.encode()
    if isinstance(chunk, (bytearray, memoryview)):
        return bytes(chunk)
    return None


async def close_stream(iterator: Any, what: str) -> None:
    """Closes ``iterator`` if it can be closed; an error from it is logged, naming ``what``."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is None:
        return
    with anyio.CancelScope(shield=True), anyio.move_on_after(CLEANUP_TIMEOUT):
        try:
            await aclose()
        except Exception:  # its finally failed: the response is over anyway
            logger.exception("closing %s failed", what)
