"""Router lookup cost for 10, 100 and 1,000 routes, in process (issue 4).

Each table is half static routes (``/static/<i>/page``) and half routes with one parameter
(``/items/<i>/{id}``); the request hits a parameter route near the end of the table. Per size:
the pure ``Router.lookup`` call for that hit and for a miss (a path no route matches), and one
request through
``apply_middleware(wrap_routes(...))(standard_not_found)`` called directly with a request dict
(no ASGI, no server), which adds the request copy, the argument binding and the handler call.

Run: ``.venv/bin/python benchmarks/router_lookup.py``
"""

from __future__ import annotations

import timeit
from collections.abc import Awaitable
from functools import partial
from typing import Any

from shallot import standard_not_found
from shallot._types import Handler, Request, Response
from shallot.middlewares import apply_middleware, wrap_routes
from shallot.middlewares.routing import Router

SIZES = (10, 100, 1_000)


async def item(request: Request, item_id: str) -> Response:
    return {"status": 200, "body": item_id.encode()}


async def page(request: Request) -> Response:
    return {"status": 200, "body": b"page"}


def table(size: int) -> list[tuple[str, list[str], Any]]:
    half = size // 2
    static = [(f"/static/{i}/page", ["GET"], page) for i in range(half)]
    dynamic = [(f"/items/{i}/{{id}}", ["GET", "POST"], item) for i in range(size - half)]
    return static + dynamic


def run(awaitable: Awaitable[Any]) -> Any:
    """Runs a coroutine that never suspends. Nothing in this pile awaits I/O, so no event
    loop is needed, and none of its overhead hides the router's cost."""
    try:
        next(awaitable.__await__())
    except StopIteration as done:
        return done.value
    raise RuntimeError("the coroutine suspended")


def run_request(handle: Handler, request: Request) -> Any:
    return run(handle(request))


def best_of(statement: Any, number: int) -> float:
    """Returns the best per-call time in microseconds over five repeats."""
    return min(timeit.repeat(statement, number=number, repeat=5)) / number * 1e6


def main() -> None:
    print(f"{'routes':>7} {'lookup µs':>10} {'miss µs':>8} {'request µs':>11}")
    for size in SIZES:
        routes = table(size)
        path = f"/items/{size - size // 2 - 2}/42"  # a parameter route near the end
        router = Router(routes)
        assert router.lookup("GET", path) is not None
        handle = apply_middleware(wrap_routes(routes))(standard_not_found)
        request = {"type": "http", "method": "GET", "path": path, "headers": {}, "body": b""}
        assert run(handle(request))["status"] == 200
        lookup = best_of(partial(router.lookup, "GET", path), 200_000)
        miss = best_of(partial(router.lookup, "GET", "/items/none/42/x"), 200_000)
        through = best_of(partial(run_request, handle, request), 100_000)
        print(f"{size:>7} {lookup:>10.3f} {miss:>8.3f} {through:>11.3f}")


if __name__ == "__main__":
    main()
