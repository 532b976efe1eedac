"""Embedding: an anyio program that runs shallot next to its own background task.

The program owns the event loop and one task group. In it run a worker, which takes jobs from
a memory object stream, and ``shallot.serve``, which serves an app that puts jobs on that
stream and reports on them::

    POST /jobs          the body is the job's text: 202 and {"id": 1}
    GET  /jobs/{id}     {"id": 1, "state": "queued" | "done", "words": ...}

The app is built inside the program, so its handlers reach the stream and the results through
closures: nothing lives at module level. Ctrl+C (or SIGTERM) cancels the task group: ``serve``
shuts down gracefully (requests in flight finish, websockets would get 1001, ``on_stop`` runs)
while the worker's ``finally`` runs, and the program exits when both have stopped.

Run it with ``python examples/embedding.py`` (``trio`` as argument for trio), then::

    curl -i -X POST localhost:8000/jobs -d 'count the words of this text'
    curl -i localhost:8000/jobs/1
"""

from __future__ import annotations

import functools
import logging
import os
import re
import signal
import sys
from collections.abc import MutableMapping
from typing import Any

import anyio
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from shallot import build_server, serve, standard_not_found
from shallot.middlewares import apply_middleware, wrap_routes
from shallot.response import json_response, respond404
from shallot.types import Request, Response, Route

logger = logging.getLogger("examples.embedding")
#: A job id as the path may carry one: str.isdigit() is no guard before int(), which refuses
#: "²" (a digit to isdigit) and numbers of more than 4300 digits.
_ID = re.compile(r"[0-9]{1,18}")


async def worker(
    jobs: MemoryObjectReceiveStream[tuple[int, str]], results: dict[int, int], pause: float
) -> None:
    """The program's own background task: counts the words of each job, one at a time."""
    logger.info("worker started")
    try:
        with jobs:
            async for job_id, job in jobs:
                await anyio.sleep(pause)  # stands in for slow work: a database, a model...
                results[job_id] = len(job.split())
    finally:
        logger.info("worker stopped")


def build_app(jobs: MemoryObjectSendStream[tuple[int, str]], results: dict[int, int]) -> Any:
    """The web side: puts jobs on ``jobs`` and answers from ``results``."""
    submitted: list[int] = []

    async def submit(request: Request) -> Response:
        job_id = len(submitted) + 1
        submitted.append(job_id)
        await jobs.send((job_id, request["body"].decode("utf-8", "replace")))
        return json_response({"id": job_id}, status=202, headers={"location": f"/jobs/{job_id}"})

    async def status(request: Request, job_id: str) -> Response:
        if not _ID.fullmatch(job_id) or int(job_id) not in submitted:
            return respond404(f"no job {job_id}")
        words = results.get(int(job_id))
        state = "queued" if words is None else "done"
        return json_response({"id": int(job_id), "state": state, "words": words})

    async def on_stop(scope: MutableMapping[str, Any]) -> None:
        logger.info("app stopped")

    routes: list[Route] = [("/jobs", ["POST"], submit), ("/jobs/{id}", ["GET"], status)]
    return build_server(apply_middleware(wrap_routes(routes))(standard_not_found), on_stop=on_stop)


async def interrupted() -> None:
    """Returns at the first Ctrl+C (SIGINT) or SIGTERM."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            return


async def main(
    port: int = 8000,
    pause: float = 1.0,
    *,
    task_status: TaskStatus[tuple[str, int]] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Runs the worker and the web app in one task group until a signal, or until the caller
    cancels. ``task_status`` reports the address the app is served on (for ``port=0``)."""
    jobs_in, jobs_out = anyio.create_memory_object_stream[tuple[int, str]](100)
    results: dict[int, int] = {}
    with jobs_in:
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker, jobs_out, results, pause)
            # Other keyword arguments are hypercorn's settings: here, its log records go
            # through the program's logging configuration instead of a handler of its own.
            hypercorn_log = logging.getLogger("hypercorn.error")
            app = build_app(jobs_in, results)
            address = await tg.start(
                functools.partial(serve, app, port=port, errorlog=hypercorn_log)
            )
            task_status.started(address)
            await interrupted()
            tg.cancel_scope.cancel()  # stops both: serve gracefully, the worker at once


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    anyio.run(
        functools.partial(main, int(os.environ.get("PORT", "8000"))),
        backend=sys.argv[1] if len(sys.argv) > 1 else "asyncio",
    )
