"""Routing of "WS" routes to real ``@websocket`` handlers, alone and behind every built-in
middleware, through the in-memory TestClient (SPEC §4, §6; issue 4).

What reaches what:

- a websocket to a path routed for HTTP only goes on to ``standard_not_found`` with
  ``allowed_methods`` set, which answers 404 (there is no 405 for a handshake), so the handshake
  is denied with that 404 (403 where the server has no denial extension);
- an HTTP request to a path routed for ``"WS"`` only never reaches the websocket handler: the
  router finds no HTTP method there (``allowed_methods == []``) and ``standard_not_found``
  answers 426 with ``Upgrade: websocket``. A route that lists an HTTP method for a
  ``@websocket`` handler lets the request reach it, and the handler answers 426 too.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import anyio
import pytest

from shallot import (
    Receiver,
    build_server,
    standard_not_found,
    websocket,
    ws_accept,
    ws_close,
    ws_send,
)
from shallot._types import (
    ASGIApp,
    Handler,
    HandlerResult,
    Middleware,
    Receive,
    Request,
    Send,
    WSClose,
    WSSend,
)
from shallot.middlewares import (
    apply_middleware,
    wrap_content_type,
    wrap_cookies,
    wrap_cors,
    wrap_gzip,
    wrap_json,
    wrap_parameters,
    wrap_routes,
    wrap_static,
)
from shallot.response import text
from shallot.testing import TestClient, WebSocketClosed, WebSocketRejected

ORIGIN = "https://app.example"


@websocket
async def room_echo(
    scope: dict[str, Any], receiver: Receiver, room: str, user: str
) -> AsyncGenerator[WSSend | WSClose, None]:
    yield ws_send(f"{scope['route']} room={room} user={user}")
    async for message in receiver:
        if message == "exit":
            yield ws_close(4001, "bye")
        yield ws_send(f"{room}/{user}: {message!r}")


@websocket
async def greet_once(scope: dict[str, Any], receiver: Receiver, name: str) -> Any:
    """The coroutine form: route arguments come after ``receiver`` here too."""
    first = await receiver.receive()
    assert isinstance(first, str)
    return ws_send(f"{first}, {name}")


async def items(request: Request) -> HandlerResult:
    return text("items")


def routes() -> list[tuple[str, list[str], Handler]]:
    return [
        ("/rooms/{room}/users/{user}", ["WS"], room_echo),
        ("/greet/{name}", ["WS"], greet_once),
        ("/items", ["GET", "POST"], items),
        ("/both/{room}/{user}", ["GET", "WS"], room_echo),  # HTTP may reach the ws handler
    ]


def routed_app() -> ASGIApp:
    return build_server(apply_middleware(wrap_routes(routes()))(standard_not_found))


async def test_route_arguments_come_after_the_receiver() -> None:
    with anyio.fail_after(5):
        async with TestClient(routed_app()) as client:
            async with client.websocket("/rooms/lobby/users/ada/") as ws:
                assert await ws.receive() == "/rooms/{room}/users/{user} room=lobby user=ada"
                await ws.send("hi")
                assert await ws.receive() == "lobby/ada: 'hi'"
                await ws.send(b"\x00")
                assert await ws.receive() == "lobby/ada: b'\\x00'"
                await ws.send("exit")
                with pytest.raises(WebSocketClosed) as closed:
                    await ws.receive()
            assert (closed.value.code, closed.value.reason) == (4001, "bye")
            async with client.websocket("/greet/b%C3%A9a") as ws:  # decoded once, by the server
                await ws.send("hello")
                assert await ws.receive() == "hello, béa"
                assert await ws.wait_closed() == 1000


@pytest.mark.parametrize(("denial", "status"), [(True, 404), (False, 403)])
@pytest.mark.parametrize("path", ["/items", "/items/", "/nowhere", "/rooms/lobby"])
async def test_websocket_to_a_path_without_a_ws_route_is_refused(
    path: str, denial: bool, status: int
) -> None:
    # /items is routed for GET and POST: the router sets allowed_methods, but a handshake
    # cannot be answered 405, so standard_not_found denies it with 404 like an unknown path.
    with anyio.fail_after(5):
        async with TestClient(routed_app()) as client:
            with pytest.raises(WebSocketRejected) as rejected:
                async with client.websocket(path, denial_response=denial):
                    raise AssertionError("the handshake was accepted")
            assert (await client.get("/items")).text == "items"  # still serving
    assert rejected.value.status == status
    if denial:
        assert rejected.value.body == b"Not Found"
        assert (b"allow", b"GET, HEAD, POST") not in rejected.value.headers


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "DELETE"])
async def test_http_to_a_ws_only_path_is_426_from_standard_not_found(method: str) -> None:
    # The handler is never called: the router finds no HTTP method there, allowed_methods is
    # [] (WS is left out), and standard_not_found answers 426 with Upgrade: websocket, as the
    # websocket handler itself would (issue 13), not 405 with an empty Allow.
    with anyio.fail_after(5):
        async with TestClient(routed_app()) as client:
            response = await client.request(method, "/rooms/lobby/users/ada")
    assert response.status_code == 426
    assert response.headers["upgrade"] == "websocket"
    assert "allow" not in response.headers
    if method != "HEAD":
        assert response.text == "Upgrade Required: this is a websocket endpoint"


async def test_http_routed_to_a_websocket_handler_gets_426() -> None:
    with anyio.fail_after(5):
        async with TestClient(routed_app()) as client:
            response = await client.get("/both/lobby/ada")
            wrong = await client.post("/both/lobby/ada")
            async with client.websocket("/both/lobby/ada") as ws:  # the WS half of the route
                assert await ws.receive() == "/both/{room}/{user} room=lobby user=ada"
    assert response.status_code == 426
    assert response.headers["upgrade"] == "websocket"
    assert (wrong.status_code, wrong.headers["allow"]) == (405, "GET, HEAD")


# --- every built-in middleware in front of a websocket route ----------------------------------


@pytest.fixture
def static_folder(tmp_path: Path) -> Path:
    """A folder holding a file at the very path of the websocket route."""
    (tmp_path / "chat").mkdir()
    (tmp_path / "chat" / "lobby").write_bytes(b"a file, not a websocket")
    return tmp_path


def pile(folder: Path, *routing: Middleware) -> list[Middleware]:
    """Every built-in middleware, in the recommended order (docs/middlewares/README.md)."""
    return [
        wrap_cors([ORIGIN], allow_credentials=True, expose_headers=["x-seen"]),
        wrap_gzip(minimum_size=10),
        wrap_static("", root_path=str(folder)),
        wrap_content_type(),
        wrap_cookies(),
        wrap_json(),
        wrap_parameters(),
        *routing,
    ]


SEEN_KEYS = (
    "method", "route", "cookies", "query_params", "form_params", "params", "json", "body",
)  # fmt: skip


def piled_app(folder: Path) -> ASGIApp:
    async def authenticate(scope: dict[str, Any]) -> Any:
        # on_connect sees what the middlewares added: a cookie decides the handshake.
        if scope["cookies"].get("session") != "s3cret":
            return {"status": 401, "headers": {"www-authenticate": "Cookie"}, "body": b"log in"}
        scope["user"] = scope["params"].get("user", ["nobody"])[0]
        return ws_accept()

    @websocket(on_connect=authenticate)
    async def chat(
        scope: dict[str, Any], receiver: Receiver, room: str
    ) -> AsyncGenerator[WSSend | WSClose, None]:
        yield ws_send(repr({key: scope[key] for key in SEEN_KEYS}))
        async for message in receiver:
            yield ws_send(f"{scope['user']}@{room}: {message!r}")

    async def page(request: Request) -> HandlerResult:
        return text("x" * 100)

    routing = wrap_routes([("/chat/{room}", ["WS"], chat), ("/page", ["GET"], page)])
    return build_server(
        apply_middleware(*pile(folder, routing))(standard_not_found), allowed_origins=[ORIGIN]
    )


async def test_a_websocket_echo_works_behind_every_middleware(static_folder: Path) -> None:
    headers = {"origin": ORIGIN, "accept-encoding": "gzip", "content-type": "application/json"}
    with anyio.fail_after(5):
        async with TestClient(piled_app(static_folder), cookies={"session": "s3cret"}) as client:
            # The static file at the same path still answers HTTP; the websocket is not served
            # from it, nor gzipped, nor CORS-decorated: the takeover passes every layer.
            assert (await client.get("/chat/lobby")).content == b"a file, not a websocket"
            async with client.websocket("/chat/lobby?user=ada&tag=a&tag=b", headers=headers) as ws:
                seen = await ws.receive()
                assert seen == repr(
                    {
                        "method": "WS",
                        "route": "/chat/{room}",
                        "cookies": {"session": "s3cret"},
                        "query_params": {"user": ["ada"], "tag": ["a", "b"]},
                        "form_params": {},
                        "params": {"user": ["ada"], "tag": ["a", "b"]},
                        "json": None,
                        "body": b"",
                    }
                )
                assert ws.accept_headers == []  # no CORS, vary or content headers on the accept
                for message in ("hello", "x" * 5000):
                    await ws.send(message)
                    assert await ws.receive() == f"ada@lobby: {message!r}"
                await ws.send(b"\x1f\x8b")
                assert await ws.receive() == "ada@lobby: b'\\x1f\\x8b'"


async def test_the_pile_hands_the_takeover_through_untouched(static_folder: Path) -> None:
    async def takeover(receive: Receive, send: Send) -> None:
        raise AssertionError("not run here")

    seen: list[Request] = []

    async def chat(request: Request, room: str) -> HandlerResult:
        seen.append(request)
        return takeover

    handle = apply_middleware(*pile(static_folder, wrap_routes([("/chat/{room}", ["WS"], chat)])))(
        standard_not_found
    )
    request = {
        "type": "websocket",
        "method": "WS",
        "path": "/chat/lobby",
        "query_string": b"a=1",
        "headers": {"origin": ORIGIN, "accept-encoding": "gzip", "cookie": "k=v"},
        "headers_list": [(b"origin", ORIGIN.encode()), (b"cookie", b"k=v")],
        "body": b"",
    }
    assert await handle(request) is takeover
    (routed,) = seen
    assert (routed["cookies"], routed["query_params"], routed["json"]) == (
        {"k": "v"},
        {"a": ["1"]},
        None,
    )
    assert "cookies" not in request  # the caller's dict is not changed


async def test_refusals_behind_the_pile_are_http_answers(static_folder: Path) -> None:
    with anyio.fail_after(5):
        async with TestClient(piled_app(static_folder)) as client:
            # on_connect's HTTP answer: no session cookie.
            with pytest.raises(WebSocketRejected) as no_cookie:
                async with client.websocket("/chat/lobby"):
                    raise AssertionError("accepted without a session")
            client.cookies.set("session", "s3cret")
            # No WS route there: standard_not_found's 404, behind every middleware.
            with pytest.raises(WebSocketRejected) as unknown:
                async with client.websocket("/page", headers={"origin": ORIGIN}):
                    raise AssertionError("accepted on an HTTP-only path")
            # wrap_parameters refuses an undecodable query string before routing: a 400.
            with pytest.raises(WebSocketRejected) as malformed:
                async with client.websocket("/chat/lobby?user=%ff"):
                    raise AssertionError("accepted with a malformed query string")
            # HTTP still gets the full treatment from the same pile.
            page = await client.get("/page", headers={"origin": ORIGIN})
            upgrade = await client.get("/chat/elsewhere", headers={"origin": ORIGIN})
    assert (no_cookie.value.status, no_cookie.value.body) == (401, b"log in")
    assert (unknown.value.status, unknown.value.body) == (404, b"Not Found")
    assert malformed.value.status == 400
    for refusal in (unknown.value, malformed.value):
        names = {name for name, _ in refusal.headers}
        # websocket requests skip CORS and gzip: their denials carry neither.
        assert not names & {b"access-control-allow-origin", b"content-encoding", b"vary"}
    assert page.headers["content-encoding"] == "gzip"
    assert page.headers["access-control-allow-origin"] == ORIGIN
    assert page.text == "x" * 100
    # a websocket-only path asked over plain HTTP: 426, with CORS like any HTTP answer
    assert (upgrade.status_code, upgrade.headers["upgrade"]) == (426, "websocket")
    assert upgrade.headers["access-control-allow-origin"] == ORIGIN
