"""One send of a response message, bounded by the response timeout (issue 13).

A client that stops reading fills the socket buffers, and then the server's ``send`` waits
for it. Each send of a response outside the plain fast path of ``_http`` (a body of 64 KiB or
less, sent at once) goes through ``send_within``, so such a client holds it at most
``response_timeout`` seconds.
"""

from __future__ import annotations

import logging

import anyio

from ._types import Message, Send

logger = logging.getLogger("shallot")


async def send_within(send: Send, message: Message, seconds: float) -> bool:
    """Sends ``message``, giving up after ``seconds``.

    Returns:
        True once sent; False when the send was abandoned (the client stopped reading).

    Raises:
        OSError: the server says the client has gone (ASGI 2.4).
    """
    with anyio.move_on_after(seconds) as scope:
        await send(message)
    if scope.cancelled_caught:
        logger.info("client stopped reading; response abandoned after %ss", seconds)
        return False
    return True
