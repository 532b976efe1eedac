"""The types to annotate a shallot app with: ``from shallot.types import Request, Response``.

``Request`` and ``Response`` are plain ``dict[str, Any]`` aliases (middlewares add keys; the
keys are listed in ``docs/spec.md``). A route table annotated ``list[Route]`` lets
``mypy --strict`` check each handler's shape, and the hook aliases check the hooks given to
``build_server`` and ``@websocket``.
"""

from __future__ import annotations

from ._receiver import JSONReceiver, Receiver
from ._types import (
    ASGIApp,
    ConnectHook,
    Handler,
    HandlerResult,
    Hook,
    LegacyHook,
    Message,
    Middleware,
    Next,
    Receive,
    Request,
    Response,
    Route,
    Scope,
    Send,
    StartHook,
    Takeover,
    WSAccept,
    WSClose,
    WSHandler,
    WSMessage,
    WSSend,
)

__all__ = [
    "ASGIApp",
    "ConnectHook",
    "Handler",
    "HandlerResult",
    "Hook",
    "JSONReceiver",
    "LegacyHook",
    "Message",
    "Middleware",
    "Next",
    "Receive",
    "Receiver",
    "Request",
    "Response",
    "Route",
    "Scope",
    "Send",
    "StartHook",
    "Takeover",
    "WSAccept",
    "WSClose",
    "WSHandler",
    "WSMessage",
    "WSSend",
]
