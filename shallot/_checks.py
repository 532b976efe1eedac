"""Checks of the options users give, made once when an app, a handler, a middleware or a hub
is built: one place for each rule, one wording for each error."""

from __future__ import annotations

import functools
import inspect
import math
import types
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any


def positive(
    name: str, value: Any, *, whole: bool = False, unit: str = "", or_zero: bool = False
) -> Any:
    """Returns ``value`` when it is a positive number (``whole``: a whole one, or infinity;
    ``or_zero``: zero too).

    Raises:
        ValueError: it is not, named ``name`` (``unit`` says what it counts).
    """
    kind = "whole number" if whole else "number"
    if unit:
        kind = f"{kind} of {unit}"
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (value > 0 or (or_zero and value == 0))
        or (whole and not (isinstance(value, int) or value == math.inf))
    ):
        sign = "zero or a positive" if or_zero else "a positive"
        raise ValueError(f"{name} must be {sign} {kind}, not {value!r}")
    return value


# --- handlers and hooks: what certainly fails when shallot calls them -------------------------
# Each check below speaks only where the call shallot makes cannot work, whatever the callable
# returns: a plain function (a ``functools.partial`` or a method of one) is read from its
# signature and its code flags. Anything else (an object with ``__call__``, a class, a
# builtin) passes unread; a sync function passes too, since it may return an awaitable (a
# middleware pile does), and only its call is checked.

#: On the handler ``@websocket`` makes: the function it decorated (``_websocket_function``).
WEBSOCKET_FUNCTION = "_shallot_websocket_function"
#: On the function ``apply_middleware(...)`` returns: itself (``_is_applier``).
APPLIER = "_shallot_applier"


@asynccontextmanager
async def _factory() -> AsyncIterator[None]:  # pragma: no cover - never entered
    yield


#: The code of every function ``@asynccontextmanager`` returns (contextlib's ``helper``).
_CONTEXT_MANAGER_CODE = _factory.__code__


def check_handler(
    where: str, handler: Any, path_params: Sequence[str] | None = None, websocket: bool = True
) -> None:
    """Checks that ``handler`` can be called as ``handler(request, *route_args)``, where the
    route arguments are ``path_params`` (None: the handler is not routed) and the request may
    be a websocket one when ``websocket`` is true; a ``@websocket`` handler is checked as
    ``function(scope, receiver, *route_args)``.

    Raises:
        TypeError: the call certainly fails, named ``where``; the message says what to do.
    """
    if _is_applier(handler):
        raise TypeError(
            f"{where}: the handler is the function apply_middleware(...) returned, which "
            "wants the default handler: call it with one, as in "
            "apply_middleware(...)(standard_not_found)"
        )
    name = _name(handler)
    params = tuple(path_params or ())
    inner = _websocket_function(handler)
    if inner is not None:
        if websocket:  # else it answers 426 and never calls the function
            problem = _call_problem(inner, ("scope", "receiver"), params, path_params)
            if problem is not None:
                raise TypeError(f"{where}: the websocket handler {name} {problem}")
        return
    function = _plain_function(handler)
    if function is None:
        return
    if inspect.isasyncgenfunction(function):
        todo = "decorate it with @websocket"
        if not websocket:
            todo += ' and route it under "WS" (to stream HTTP, return a response with a "stream")'
        raise TypeError(f"{where}: the handler {name} is an async generator function: {todo}")
    if _is_generator_function(function):
        todo = "make it async def" + (" and decorate it with @websocket" if websocket else "")
        raise TypeError(f"{where}: the handler {name} is a generator function: {todo}")
    problem = _call_problem(handler, ("request",), params, path_params)
    if problem is None:
        return
    if websocket and _call_problem(handler, ("scope", "receiver"), params, path_params) is None:
        problem = "takes (scope, receiver) like a websocket handler: decorate it with @websocket"
        if path_params is None:  # not routed: it may as well want a route's argument
            problem = (
                "takes a second argument: a route argument after the request (route it with "
                "wrap_routes, the path naming it), or a receiver after the scope (a websocket "
                "handler: decorate it with @websocket)"
            )
    raise TypeError(f"{where}: the handler {name} {problem}")


def check_hook(what: str, hook: Any) -> None:
    """Checks that ``hook`` (``on_start`` or ``on_stop``) can be called as ``hook(scope)`` and
    gives an awaitable.

    Raises:
        TypeError: it certainly cannot, named ``what``; the message says what to do.
    """
    name = _name(hook)
    if _is_context_manager_factory(hook):
        raise TypeError(f"{what} {name} makes an async context manager: pass it as lifespan={name}")
    function = _plain_function(hook)
    if function is None:
        return
    if inspect.isasyncgenfunction(function) or _is_generator_function(function):
        raise TypeError(
            f"{what} {name} is a generator function: make it a plain async def (for a "
            "context around the app's life, decorate it with @asynccontextmanager and pass it "
            "as lifespan=)"
        )
    problem = _call_problem(hook, ("scope",), (), None)
    if problem is not None:
        raise TypeError(f"{what} {name} {problem}")


def check_lifespan(factory: Any) -> None:
    """Checks that ``factory()`` can give an async context manager.

    Raises:
        TypeError: it certainly cannot; the message says what to do.
    """
    name = _name(factory)
    decorate = "decorate it with @contextlib.asynccontextmanager"
    if _is_context_manager_factory(factory):
        function = _plain_function(factory.__wrapped__)
        if function is not None and not _binds(function, ()):
            raise TypeError(
                f"lifespan {name} takes arguments, but it is called with none: give it none "
                "(bind what it needs with functools.partial)"
            )
        return
    function = _plain_function(factory)
    if function is None:
        return
    if inspect.isasyncgenfunction(function):
        raise TypeError(f"lifespan {name} is an async generator function: {decorate}")
    if inspect.iscoroutinefunction(function):
        raise TypeError(
            f"lifespan {name} is an async def function, whose call gives a coroutine, not an "
            f"async context manager: make it yield once and {decorate}"
        )
    if not _binds(factory, ()):
        raise TypeError(
            f"lifespan {name} takes arguments, but it is called with none: give it none "
            "(bind what it needs with functools.partial)"
        )


def _name(target: Any) -> str:
    return getattr(target, "__qualname__", None) or repr(target)


def _plain_function(target: Any) -> types.FunctionType | None:
    """The Python function behind ``target`` (a function, or partials or a method of one),
    or None when ``target`` is anything else: nothing is read from those."""
    while isinstance(target, functools.partial):
        target = target.func
    if inspect.ismethod(target):
        target = target.__func__
    return target if isinstance(target, types.FunctionType) else None


def _is_applier(target: Any) -> bool:
    # the marker is the applier itself: a wrapper that copied the applier's __dict__ (as
    # functools.wraps does) is not taken for one
    return isinstance(target, types.FunctionType) and target.__dict__.get(APPLIER) is target


def _websocket_function(handler: Any) -> Any:
    """The function a ``@websocket`` handler decorated, or None for any other handler (a
    wrapper that copied a ``@websocket`` handler's ``__dict__`` too: it may call it its way)."""
    if not isinstance(handler, types.FunctionType):
        return None
    function = handler.__dict__.get(WEBSOCKET_FUNCTION)
    wrapped = getattr(handler, "__wrapped__", None)
    return function if function is not None and function is wrapped else None


def _is_context_manager_factory(target: Any) -> bool:
    return isinstance(target, types.FunctionType) and target.__code__ is _CONTEXT_MANAGER_CODE


def _is_generator_function(function: types.FunctionType) -> bool:
    # a @types.coroutine generator is awaitable (CO_ITERABLE_COROUTINE)
    return inspect.isgeneratorfunction(function) and not (
        function.__code__.co_flags & inspect.CO_ITERABLE_COROUTINE
    )


def _signature(target: Any) -> inspect.Signature | None:
    """The signature of the call itself (a decorator's ``__wrapped__`` is not followed), or
    None when it cannot be trusted (a ``__signature__`` was set by hand)."""
    if any("__signature__" in getattr(part, "__dict__", {}) for part in _parts(target)):
        return None
    try:
        return inspect.signature(target, follow_wrapped=False)
    except (TypeError, ValueError):  # pragma: no cover - plain functions have one
        return None


def _parts(target: Any) -> list[Any]:
    parts = [target]
    while isinstance(target, functools.partial):
        target = target.func
        parts.append(target)
    if inspect.ismethod(target):
        parts.append(target.__func__)
    return parts


def _binds(target: Any, arguments: tuple[Any, ...]) -> bool:
    signature = _signature(target)
    if signature is None:
        return True
    try:
        signature.bind(*arguments)
    except TypeError:
        return False
    return True


def _call_problem(
    target: Any, fixed: tuple[str, ...], params: tuple[str, ...], path: Sequence[str] | None
) -> str | None:
    """Says why ``target(*fixed, *params)`` fails, or None when it binds (or is unknown).
    ``path`` is None when there is no route: the call is ``target(*fixed)``."""
    signature = _signature(target)
    if signature is None:
        return None
    try:
        signature.bind(*fixed, *params)
    except TypeError as error:
        reason = str(error)
    else:
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    parameters = signature.parameters.values()
    positional = [p for p in parameters if p.kind in kinds]
    if path is not None and len(positional) >= len(fixed):  # wrong in its route arguments
        spread = any(p.kind is p.VAR_POSITIONAL for p in parameters)
        extra = positional[len(fixed) :]
        needed = [p.name for p in extra if p.default is p.empty]
        after = " after the receiver" if "receiver" in fixed else ""
        if not spread and len(extra) < len(params):
            return (
                f"takes {_count(len(extra))}{after} but {_in_path(params)}: give it one "
                "parameter per path parameter, in order"
            )
        if len(needed) > len(params):
            given = f"only {_in_path(params)}" if params else "the path has none"
            return (
                f"needs {_count(len(needed))}{after} ({', '.join(needed)}) but {given}: add "
                "the missing ones to the path, or give them defaults"
            )
    call = ", ".join((*fixed, *params))
    return f"cannot be called as {_name(target)}({call}): {reason}"


def _count(number: int) -> str:
    if number == 0:
        return "no route argument"
    return f"{number} route argument{'s' if number > 1 else ''}"


def _in_path(params: tuple[str, ...]) -> str:
    named = [f"{{{param}}}" for param in params]
    if len(named) == 1:
        return f"{named[0]} is in the path"
    return f"{', '.join(named[:-1])} and {named[-1]} are in the path"
