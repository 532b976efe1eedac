"""shallot: a small, data-driven ASGI framework on anyio.

Requests and responses are plain dicts, handlers are async functions, features are
middlewares, and websocket handlers are async generators.
"""

from __future__ import annotations

from ._asgi import build_server
from ._body import BodyStream, stream_body
from ._errors import ASGIProtocolError, ShallotError, WSDisconnect
from ._lifespan_driver import LifespanError
from ._serve import serve
from ._upload import UploadedFile
from .handlers import standard_not_found
from .middlewares import apply_middleware
from .response import standard_disconnect, ws_accept, ws_close, ws_send, ws_send_json
from .websocket import JSONReceiver, Receiver, websocket

__all__ = [
    "ASGIProtocolError",
    "BodyStream",
    "JSONReceiver",
    "LifespanError",
    "Receiver",
    "ShallotError",
    "UploadedFile",
    "WSDisconnect",
    "apply_middleware",
    "build_server",
    "serve",
    "standard_disconnect",
    "standard_not_found",
    "stream_body",
    "websocket",
    "ws_accept",
    "ws_close",
    "ws_send",
    "ws_send_json",
]
