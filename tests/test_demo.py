"""README's demo app answers as the README says."""

from __future__ import annotations

import anyio

from examples.demo import app
from shallot.testing import TestClient


async def test_demo_page_json_and_echo() -> None:
    with anyio.fail_after(2):
        async with TestClient(app) as client:
            page = await client.get("/")
            assert page.status_code == 200
            assert "new WebSocket" in page.text
            hello = await client.get("/hello/ada", params={"x": "1"})
            assert hello.json() == {"hello": "ada", "params": {"x": ["1"]}}
            async with client.websocket("/echo") as ws:
                await ws.send("hi")
                assert await ws.receive() == "@ECHO: hi"
                await ws.send("exit")
                assert await ws.receive() == "@ECHO: exit"
                assert await ws.wait_closed() == 1000
            assert (await client.get("/nope")).status_code == 404
