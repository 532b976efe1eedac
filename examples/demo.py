"""The demo app that README's first command serves: a greeting and a small JSON endpoint."""

from __future__ import annotations

from shallot import apply_middleware, build_server, standard_not_found
from shallot.response import json, text


async def hello(request: dict) -> dict:
    if request["path"] == "/":
        return text("Hello from shallot!\n")
    if request["path"] == "/json":
        return json({"hello": "world", "method": request["method"]})
    return await standard_not_found(request)


app = build_server(apply_middleware()(hello))
