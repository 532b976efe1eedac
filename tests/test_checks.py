"""The build-time checks of user options and callables: what certainly fails is refused with a
message that says what to do; anything that may work passes."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from shallot import apply_middleware, standard_not_found, websocket, ws_send
from shallot._checks import check_handler, check_hook, check_lifespan
from shallot._types import Request, Response
from shallot.response import text

# --- handlers ----------------------------------------------------------------------------------


async def plain(request: Request) -> Response:
    return text("plain")


async def one(request: Request, name: str) -> Response:
    return text(name)


async def two(request: Request, a: str, b: str) -> Response:
    return text(a + b)


async def spread(request: Request, *args: str) -> Response:
    return text(",".join(args))


async def optional(request: Request, name: str = "", page: str = "1") -> Response:
    return text(name + page)


async def generator(request: Request) -> AsyncIterator[Any]:
    yield ws_send("x")


def sync_generator(request: Request) -> Iterator[Any]:
    yield ws_send("x")


async def ws_like(scope: Request, receiver: Any) -> None:
    return None


@websocket
async def chat(scope: Request, receiver: Any) -> AsyncIterator[Any]:
    yield ws_send("hi")


@websocket
async def room(scope: Request, receiver: Any, name: str) -> AsyncIterator[Any]:
    yield ws_send(name)


class Handlers:
    async def method(self, request: Request, name: str) -> Response:
        return text(name)

    async def __call__(self, request: Request) -> Response:  # no name: not read, passes
        return text("object")


def logged(handler: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """A user's decorator: its wrapper takes anything and copies the handler's __dict__."""

    @functools.wraps(handler)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        return await handler(*args, **kwargs)

    return wrapper


def with_signature() -> Callable[..., Awaitable[Any]]:
    """A handler whose __signature__ was set by hand: its real call is not read."""

    async def handler(*args: Any) -> Response:
        return text("x")

    handler.__signature__ = inspect.signature(plain)  # type: ignore[attr-defined]
    return handler


PILE = apply_middleware()(spread)


@pytest.mark.parametrize(
    ("handler", "params", "ws"),
    [
        (plain, None, True),
        (plain, [], False),
        (one, ["name"], False),
        (two, ["a", "b"], True),
        (spread, [], False),
        (spread, ["a", "b", "c"], True),
        (optional, [], False),
        (optional, ["name"], False),
        (optional, ["name", "page"], False),
        (functools.partial(two, b="b"), ["a"], False),
        (functools.partial(functools.partial(two), b="b"), ["a"], False),
        (Handlers().method, ["name"], False),
        (Handlers(), ["name"], False),  # an object: not read
        (lambda request: plain(request), [], False),  # sync, gives an awaitable
        (PILE, ["a", "b"], False),  # a pile passes route arguments on
        (standard_not_found, None, True),
        (chat, None, True),
        (chat, [], True),
        (room, ["name"], True),
        (room, [], False),  # an HTTP request gets 426: the function is never called
        (logged(chat), ["extra"], True),  # copies chat's marker, may call it its way
        (logged(two), [], False),
        (with_signature(), ["a"], False),
    ],
)
def test_handlers_that_can_be_called_pass(handler: Any, params: list[str] | None, ws: bool) -> None:
    check_handler("route", handler, params, websocket=ws)


@pytest.mark.parametrize(
    ("handler", "params", "ws", "message"),
    [
        (generator, [], True, r"generator is an async generator function: decorate it with @web"),
        (generator, [], False, r"@websocket and route it under \"WS\""),
        (functools.partial(generator), None, True, r"async generator function"),
        (sync_generator, [], True, r"generator function: make it async def and decorate"),
        (ws_like, [], True, r"takes \(scope, receiver\) like a websocket handler: decorate"),
        (ws_like, None, True, r"a route argument after the request \(route it with wrap_routes"),
        (plain, ["name"], False, r"takes no route argument but \{name\} is in the path"),
        (one, ["a", "b"], False, r"takes 1 route argument but \{a\} and \{b\} are in the path"),
        (one, [], False, r"needs 1 route argument \(name\) but the path has none"),
        (two, ["a"], False, r"needs 2 route arguments \(a, b\) but only \{a\} is in the path"),
        (one, None, False, r"cannot be called as one\(request\): missing a required argument"),
        (Handlers().method, [], False, r"needs 1 route argument \(name\)"),
        (functools.partial(one, name="x"), ["name"], False, r"takes no route argument but"),
        (chat, ["room"], True, r"takes no route argument after the receiver but \{room\} is"),
        (room, [], True, r"websocket handler room needs 1 route argument after the receiver"),
        (apply_middleware(), None, True, r"apply_middleware\(\.\.\.\) returned, which wants"),
    ],
)
def test_handlers_that_cannot_be_called_are_refused(
    handler: Any, params: list[str] | None, ws: bool, message: str
) -> None:
    with pytest.raises(TypeError, match=rf"^route: .*{message}"):
        check_handler("route", handler, params, websocket=ws)


def test_a_wrapper_of_the_applier_is_not_taken_for_it() -> None:
    applier = apply_middleware()
    wrapper = functools.wraps(applier)(lambda request: plain(request))
    check_handler("route", wrapper)


# --- lifespan hooks ----------------------------------------------------------------------------


async def on_start(scope: Request) -> dict[str, Any]:
    return {}


async def no_scope() -> None:
    return None


@asynccontextmanager
async def context() -> AsyncIterator[dict[str, Any]]:
    yield {}


@asynccontextmanager
async def context_of_app(app: Any) -> AsyncIterator[None]:
    yield


async def undecorated() -> AsyncIterator[None]:
    yield


@pytest.mark.parametrize(
    "hook", [on_start, functools.partial(one, name="x"), lambda scope: on_start(scope), Handlers()]
)
def test_hooks_that_can_be_called_pass(hook: Any) -> None:
    check_hook("on_start", hook)


@pytest.mark.parametrize(
    ("hook", "message"),
    [
        (no_scope, r"on_stop no_scope cannot be called as no_scope\(scope\)"),
        (generator, r"on_stop generator is a generator function: make it a plain async def"),
        (context, r"on_stop context makes an async context manager: pass it as lifespan="),
    ],
)
def test_hooks_that_cannot_be_called_are_refused(hook: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        check_hook("on_stop", hook)


@pytest.mark.parametrize(
    "factory",
    [context, functools.partial(context_of_app, None), lambda: context(), Handlers],
)
def test_lifespans_that_can_be_called_pass(factory: Any) -> None:
    check_lifespan(factory)


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (context_of_app, r"takes arguments, but it is called with none"),
        (lambda app: context(), r"takes arguments, but it is called with none"),
        (undecorated, r"async generator function: decorate it with @contextlib\.asynccontext"),
        (no_scope, r"async def function, whose call gives a coroutine"),
    ],
)
def test_lifespans_that_cannot_be_called_are_refused(factory: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        check_lifespan(factory)
