"""wrap_content_type: a content-type guessed from the path for responses without one."""

from __future__ import annotations

import mimetypes
from typing import Any

import anyio
import pytest

from shallot import build_server
from shallot._types import Receive, Request, Send
from shallot.middlewares import apply_middleware, wrap_content_type
from shallot.testing import TestClient


async def through(response: Any, path: str, **options: Any) -> Any:
    """Returns what the middleware makes of a handler's ``response`` to a request for
    ``path``."""

    async def handler(request: Request) -> Any:
        return response

    pile = apply_middleware(wrap_content_type(**options))(handler)
    return await pile({"method": "GET", "path": path, "headers": {}})


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/index.html", "text/html"),
        ("/static/app.js", "text/javascript"),
        ("/a/b/data.JSON", "application/json"),
        ("/img/logo.png", "image/png"),
        ("/dir.d/readme", "application/octet-stream"),  # the dot is in a folder name
        ("/", "application/octet-stream"),
        ("/file.unknownext", "application/octet-stream"),
        ("/archive.tar.gz", "application/gzip"),  # what is sent, not what it holds
        ("/archive.tgz", "application/gzip"),
        ("/doc.txt.bz2", "application/x-bzip2"),
    ],
)
async def test_guessed_from_the_path(path: str, content_type: str) -> None:
    result = await through({"status": 200, "body": b"x"}, path)
    assert result["headers"] == {"content-type": content_type}


async def test_strict_leaves_out_the_non_standard_types() -> None:
    table = mimetypes.MimeTypes()
    extension = min(set(table.types_map[False]) - set(table.types_map[True]) - {".webp"})
    path = f"/file{extension}"
    lenient = await through({"status": 200}, path)
    assert lenient["headers"]["content-type"] == table.types_map[False][extension]
    strict = await through({"status": 200}, path, strict=True)
    assert strict["headers"]["content-type"] == "application/octet-stream"


async def test_additional_types_and_default() -> None:
    options = {
        "additional_content_types": {"text/markdown": ["md", ".MarkDown"], "text/x-app": [".js"]},
        "default_content_type": "text/plain",
    }
    assert (await through({"status": 200}, "/r.md", **options))["headers"] == {
        "content-type": "text/markdown"
    }
    assert (await through({"status": 200}, "/r.markdown", **options))["headers"] == {
        "content-type": "text/markdown"
    }
    assert (await through({"status": 200}, "/app.js", **options))["headers"] == {
        "content-type": "text/x-app"
    }
    assert (await through({"status": 200}, "/LICENSE", **options))["headers"] == {
        "content-type": "text/plain"
    }


async def test_no_global_state_is_touched() -> None:
    before = mimetypes.guess_type("/r.shallot-test")
    wrap_content_type({"text/x-shallot": ["shallot-test"]})
    assert mimetypes.guess_type("/r.shallot-test") == before == (None, None)
    # And two piles are independent.
    assert (await through({"status": 200}, "/r.shallot-test"))["headers"] == {
        "content-type": "application/octet-stream"
    }


async def test_default_none_leaves_unknown_types_unlabelled() -> None:
    response = {"status": 200, "body": b""}
    assert await through(response, "/LICENSE", default_content_type=None) is response


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "text/plain"},
        {"content-type": "text/plain", "x": "1"},
        [("x", "1"), ("CONTENT-TYPE", "text/plain")],
        [(b"content-type", b"text/plain")],
    ],
)
async def test_an_existing_content_type_is_kept(headers: Any) -> None:
    response = {"status": 200, "headers": headers}
    assert await through(response, "/index.html") is response


async def test_list_headers_are_extended_and_nothing_is_mutated() -> None:
    headers = [("set-cookie", "a=1"), ("set-cookie", "b=2")]
    response = {"status": 200, "headers": headers}
    result = await through(response, "/x.css")
    assert result["headers"] == [*headers, ("content-type", "text/css")]
    assert response["headers"] is headers
    assert len(headers) == 2
    dict_response = {"status": 200, "headers": {"x": "1"}}
    await through(dict_response, "/x.css")
    assert dict_response == {"status": 200, "headers": {"x": "1"}}


@pytest.mark.parametrize("status", [101, 204, 304])
async def test_responses_without_content_are_left_alone(status: int) -> None:
    response = {"status": status}
    assert await through(response, "/index.html") is response


async def test_a_websocket_takeover_passes_through_untouched() -> None:
    async def takeover(receive: Receive, send: Send) -> None:
        raise AssertionError("not run here")

    assert await through(takeover, "/socket.js") is takeover


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"additional_content_types": [("text/x", ["x"])]}, TypeError, "must be a dict"),
        ({"additional_content_types": {"markdown": ["md"]}}, ValueError, "not a content type"),
        ({"additional_content_types": {"text/markdown": "md"}}, TypeError, "must be a list"),
        ({"additional_content_types": {"text/markdown": ["."]}}, ValueError, "file extension"),
        ({"additional_content_types": {"text/markdown": ["a/md"]}}, ValueError, "extension"),
        ({"additional_content_types": {"text/markdown": [1]}}, ValueError, "file extension"),
        ({"default_content_type": "binary"}, ValueError, "default_content_type"),
        ({"default_content_type": b"text/plain"}, ValueError, "default_content_type"),
        ({"strict": "no"}, TypeError, "strict must be a bool"),
    ],
)
def test_options_are_checked_when_built(options: dict[str, Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        wrap_content_type(**options)


async def test_end_to_end() -> None:
    async def handler(request: Request) -> Any:
        return {"status": 200, "body": b"body { }"}

    app = build_server(apply_middleware(wrap_content_type())(handler))
    with anyio.fail_after(5):
        async with TestClient(app) as client:
            assert (await client.get("/site.css")).headers["content-type"] == "text/css"
            assert (await client.get("/blob")).headers["content-type"] == (
                "application/octet-stream"
            )
