"""wrap_static: files, validators, ranges, and no way out of the folder (issue 4)."""

from __future__ import annotations

import os
from email.utils import formatdate
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shallot import build_server
from shallot._types import ASGIApp, Handler, HandlerResult, Message, Request, Response
from shallot.middlewares import apply_middleware, wrap_static
from shallot.middlewares._static_files import safe_segments
from shallot.testing import TestClient

from .._fakes import http_scope

SECRET = b"TOP-SECRET-outside-the-folder"
SIBLING_SECRET = b"TOP-SECRET-in-a-sibling-folder"
HELLO = b"hello, world\n"
DATA = bytes(range(256)) * 4  # 1024 bytes


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A served folder ``public`` with a secret beside it and a sibling sharing its prefix."""
    root = tmp_path_factory.mktemp("site")
    (root / "secret.txt").write_bytes(SECRET)
    (root / "public-secret").mkdir()
    (root / "public-secret" / "secret.txt").write_bytes(SIBLING_SECRET)
    public = root / "public"
    (public / "sub").mkdir(parents=True)
    (public / "hello.txt").write_bytes(HELLO)
    (public / "data.bin").write_bytes(DATA)
    (public / "page.html").write_bytes(b"<p>hi</p>")
    (public / "empty.txt").write_bytes(b"")
    (public / "archive.tar.gz").write_bytes(b"\x1f\x8b not really")
    (public / "picture.webp").write_bytes(b"RIFF")
    (public / "notes.md").write_bytes(b"# notes")
    (public / "odd%2e%2e.txt").write_bytes(b"a literal percent name")
    (public / "sub" / "nested.txt").write_bytes(b"nested")
    (public / "link-in").symlink_to("hello.txt")
    (public / "link-out").symlink_to("../secret.txt")
    (public / "link-abs").symlink_to(root / "secret.txt")
    (public / "link-sibling").symlink_to("../public-secret")
    (public / "loop").symlink_to("loop")
    return root


def app_for(root: Path, **options: Any) -> ASGIApp:
    return build_server(apply_middleware(wrap_static("public", str(root), **options))(fallback))


async def fallback(request: Request) -> Response:
    """What a router after the static middleware would answer."""
    return {"status": 404, "headers": {"x-fallback": "yes"}, "body": b"not a file"}


async def body_of(response: HandlerResult) -> bytes:
    assert isinstance(response, dict)
    stream = response.get("stream")
    if stream is None:
        return bytes(response.get("body", b""))
    chunks = [chunk async for chunk in stream]
    return b"".join(chunks)


def direct(root: Path, **options: Any) -> Handler:
    return apply_middleware(wrap_static("public", str(root), **options))(fallback)


def get(path: str, **headers: str) -> Request:
    return {"method": "GET", "path": path, "headers": headers, "body": b""}


async def asgi_get(app: ASGIApp, path: str) -> tuple[int, bytes]:
    """Sends a GET with ``path`` exactly as a server would deliver it (decoded once)."""
    scope = http_scope(path)
    sent: list[Message] = []
    done = anyio.Event()
    requested = False

    async def receive() -> Message:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    with anyio.fail_after(5):
        await app(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body


# --- serving files


async def test_get_serves_the_file_with_validators(root: Path) -> None:
    async with TestClient(app_for(root)) as client:
        response = await client.get("/hello.txt")
    assert response.status_code == 200
    assert response.content == HELLO
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-length"] == str(len(HELLO))
    assert response.headers["accept-ranges"] == "bytes"
    info = (root / "public" / "hello.txt").stat()
    assert response.headers["last-modified"] == formatdate(info.st_mtime, usegmt=True)
    etag = response.headers["etag"]
    assert etag.startswith('"')
    assert etag.endswith('"')


async def test_head_has_the_headers_of_get_and_no_body(root: Path) -> None:
    async with TestClient(app_for(root)) as client:
        got = await client.get("/data.bin")
        head = await client.head("/data.bin")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == "1024"
    for name in ("etag", "last-modified", "content-type", "accept-ranges"):
        assert head.headers[name] == got.headers[name]


async def test_nested_files_and_symlinks_inside_the_folder_are_served(root: Path) -> None:
    async with TestClient(app_for(root)) as client:
        nested = await client.get("/sub/nested.txt")
        linked = await client.get("/link-in")
        doubled = await client.get("/sub//nested.txt")
    assert (nested.status_code, nested.content) == (200, b"nested")
    assert (linked.status_code, linked.content) == (200, HELLO)
    assert (doubled.status_code, doubled.content) == (200, b"nested")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/missing.txt"),
        ("GET", "/"),
        ("GET", "/sub"),
        ("GET", "/sub/"),
        ("POST", "/hello.txt"),
        ("PUT", "/hello.txt"),
        ("DELETE", "/hello.txt"),
        ("OPTIONS", "/hello.txt"),
    ],
)
async def test_requests_naming_no_file_go_on_to_the_next_handler(
    root: Path, method: str, path: str
) -> None:
    async with TestClient(app_for(root)) as client:
        response = await client.request(method, path)
    assert response.status_code == 404
    assert response.headers["x-fallback"] == "yes"


async def test_websocket_requests_pass_through_untouched(root: Path) -> None:
    async def takeover(receive: Any, send: Any) -> None:
        raise AssertionError("not run here")

    async def ws_handler(request: Request) -> Any:
        return takeover

    handler = apply_middleware(wrap_static("public", str(root)))(ws_handler)
    result = await handler({"method": "WS", "path": "/hello.txt", "headers": {}, "body": b""})
    assert result is takeover


async def test_a_percent_in_a_file_name_is_literal(root: Path) -> None:
    async with TestClient(app_for(root)) as client:
        # The client escapes "%" as "%25"; the server decodes it once to "odd%2e%2e.txt".
        response = await client.get("/odd%252e%252e.txt")
    assert (response.status_code, response.content) == (200, b"a literal percent name")


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("page.html", "text/html; charset=utf-8"),
        ("data.bin", "application/octet-stream"),
        ("archive.tar.gz", "application/gzip"),
        ("picture.webp", "image/webp"),
        ("notes.md", "text/markdown; charset=utf-8"),
        ("link-in", "application/octet-stream"),  # the requested name decides, not the target
    ],
)
async def test_content_type_is_guessed_from_the_name(
    root: Path, name: str, content_type: str
) -> None:
    handler = direct(root, content_types={".md": "text/markdown"})
    response = await handler(get(f"/{name}"))
    assert isinstance(response, dict)
    assert response["headers"]["content-type"] == content_type
    await body_of(response)


async def test_the_stream_reads_in_chunks_and_closes_the_file(root: Path) -> None:
    response = await direct(root, chunk_size=100)(get("/data.bin"))
    assert isinstance(response, dict)
    stream = response["stream"]
    sizes = [len(chunk) async for chunk in stream]
    assert sizes == [100] * 10 + [24]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open descriptors")
async def test_closing_the_stream_early_closes_the_file(root: Path) -> None:
    before = len(os.listdir("/proc/self/fd"))
    response = await direct(root, chunk_size=10)(get("/data.bin"))
    assert isinstance(response, dict)
    stream = response["stream"]
    assert await stream.__anext__() == DATA[:10]
    assert len(os.listdir("/proc/self/fd")) == before + 1
    await stream.aclose()
    assert len(os.listdir("/proc/self/fd")) == before


async def test_a_file_that_shrinks_while_sent_fails_the_stream(tmp_path: Path) -> None:
    (tmp_path / "public").mkdir()
    target = tmp_path / "public" / "big.bin"
    target.write_bytes(DATA)
    response = await direct(tmp_path, chunk_size=512)(get("/big.bin"))
    assert isinstance(response, dict)
    target.write_bytes(DATA[:100])
    with pytest.raises(OSError, match="shrank"):
        await body_of(response)


# --- conditional requests (RFC 9110 §13)


async def validators(root: Path, name: str = "hello.txt") -> tuple[str, str]:
    response = await direct(root)(get(f"/{name}"))
    assert isinstance(response, dict)
    await body_of(response)
    return response["headers"]["etag"], response["headers"]["last-modified"]


@pytest.mark.parametrize(
    "if_none_match",
    ["{etag}", "W/{etag}", '"other", {etag}', "*", ' "x" ,W/{etag} '],
)
async def test_matching_if_none_match_gets_304(root: Path, if_none_match: str) -> None:
    etag, _ = await validators(root)
    async with TestClient(app_for(root)) as client:
        response = await client.get(
            "/hello.txt", headers={"if-none-match": if_none_match.format(etag=etag)}
        )
        head = await client.head(
            "/hello.txt", headers={"if-none-match": if_none_match.format(etag=etag)}
        )
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert head.status_code == 304


async def test_other_etags_get_the_file(root: Path) -> None:
    _, last_modified = await validators(root)
    async with TestClient(app_for(root)) as client:
        response = await client.get(
            "/hello.txt",
            # if-none-match decides when present; if-modified-since is not consulted
            headers={"if-none-match": '"stale"', "if-modified-since": last_modified},
        )
    assert (response.status_code, response.content) == (200, HELLO)


@pytest.mark.parametrize(
    ("since", "status"),
    [
        ("{last_modified}", 304),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 200),
        ("not a date", 200),
        ("Fri, 01 Jan 9999 00:00:00 GMT", 200),  # in the future: invalid, ignored
    ],
)
async def test_if_modified_since(root: Path, since: str, status: int) -> None:
    _, last_modified = await validators(root)
    async with TestClient(app_for(root)) as client:
        response = await client.get(
            "/hello.txt", headers={"if-modified-since": since.format(last_modified=last_modified)}
        )
    assert response.status_code == status


# --- byte ranges (RFC 9110 §14)


@pytest.mark.parametrize(
    ("range_", "first", "last"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=1000-", 1000, 1023),
        ("bytes=-10", 1014, 1023),
        ("bytes=-5000", 0, 1023),
        ("bytes=5-100000", 5, 1023),
        ("BYTES = 3 - 4", 3, 4),
    ],
)
async def test_a_single_range_gets_206(root: Path, range_: str, first: int, last: int) -> None:
    async with TestClient(app_for(root)) as client:
        response = await client.get("/data.bin", headers={"range": range_})
    assert response.status_code == 206
    assert response.content == DATA[first : last + 1]
    assert response.headers["content-range"] == f"bytes {first}-{last}/1024"
    assert response.headers["content-length"] == str(last - first + 1)


@pytest.mark.parametrize("range_", ["bytes=1024-", "bytes=5000-6000", "bytes=-0"])
async def test_an_unsatisfiable_range_gets_416(root: Path, range_: str) -> None:
    async with TestClient(app_for(root)) as client:
        response = await client.get("/data.bin", headers={"range": range_})
    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */1024"
    assert response.content == b""


@pytest.mark.parametrize(
    "range_",
    [
        "bytes=0-1,5-6",
        "bytes=9-1",
        "items=0-1",
        "bytes=",
        "bytes=-",
        "bytes=a-b",
        "bytes=" + "9" * 5000,
    ],
)
async def test_ranges_we_do_not_serve_get_the_whole_file(root: Path, range_: str) -> None:
    async with TestClient(app_for(root)) as client:
        response = await client.get("/data.bin", headers={"range": range_})
    assert (response.status_code, response.content) == (200, DATA)


async def test_if_range(root: Path) -> None:
    etag, last_modified = await validators(root, "data.bin")
    async with TestClient(app_for(root)) as client:
        by_etag = await client.get("/data.bin", headers={"range": "bytes=0-1", "if-range": etag})
        by_date = await client.get(
            "/data.bin", headers={"range": "bytes=0-1", "if-range": last_modified}
        )
        stale = await client.get("/data.bin", headers={"range": "bytes=0-1", "if-range": '"old"'})
        weak = await client.get(
            "/data.bin", headers={"range": "bytes=0-1", "if-range": f"W/{etag}"}
        )
    assert (by_etag.status_code, by_etag.content) == (206, DATA[:2])
    assert (by_date.status_code, by_date.content) == (206, DATA[:2])
    assert (stale.status_code, stale.content) == (200, DATA)
    assert (weak.status_code, weak.content) == (200, DATA)  # If-Range compares strongly


async def test_head_and_empty_files_ignore_ranges(root: Path) -> None:
    async with TestClient(app_for(root)) as client:
        head = await client.head("/data.bin", headers={"range": "bytes=0-1"})
        empty = await client.get("/empty.txt", headers={"range": "bytes=0-1"})
    assert (head.status_code, head.headers["content-length"]) == (200, "1024")
    assert (empty.status_code, empty.content, empty.headers["content-length"]) == (200, b"", "0")


# --- build-time validation


def test_the_folder_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError, match="missing"):
        wrap_static("missing", str(tmp_path))
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(NotADirectoryError):
        wrap_static("file", str(tmp_path))


@pytest.mark.parametrize(
    "options", [{"chunk_size": 0}, {"chunk_size": True}, {"content_types": {"md": "text/x"}}]
)
def test_bad_options_fail_at_build_time(tmp_path: Path, options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="wrap_static"):
        wrap_static(".", str(tmp_path), **options)


# --- no way out of the folder

TRAVERSALS = [
    "/../secret.txt",
    "/../../../../../../etc/passwd",
    "/sub/../../secret.txt",
    "/sub/../hello.txt",  # even when it would land inside, ".." is not followed
    "/%2e%2e/secret.txt",
    "/%2E%2e/secret.txt",
    "/..%2fsecret.txt",
    "/%2e%2e%2fsecret.txt",
    "/%252e%252e/secret.txt",
    "/..%252fsecret.txt",
    "/..%5csecret.txt",
    "/..\\secret.txt",
    "/sub\\..\\..\\secret.txt",
    "/. ./secret.txt",
    "/.. /secret.txt",
    "/.../secret.txt",
    "/hello.txt\x00.png",
    "/secret.txt\x00",
    "/%00/../secret.txt",
    "/C:/secret.txt",
    "/C:\\secret.txt",
    "/c:secret.txt",
    "/hello.txt::$DATA",
    "/../public-secret/secret.txt",
    "/link-out",
    "/link-abs",
    "/link-sibling/secret.txt",
    "/loop",
    "/" + "a" * 5000,
    "/\udcff\udc80",
    "/\ud800",
]


def traversal_paths(root: Path) -> list[str]:
    absolute = str(root / "secret.txt")
    return [*TRAVERSALS, absolute, "/" + absolute, "//" + absolute.lstrip("/")]


async def test_traversal_never_reaches_a_file_outside(root: Path) -> None:
    handler = direct(root)
    app = app_for(root)
    for path in traversal_paths(root):
        response = await handler(get(path))
        assert isinstance(response, dict)
        assert response["status"] == 404, path
        assert response["headers"] == {"x-fallback": "yes"}, path  # not answered from a file
        status, body = await asgi_get(app, path)
        assert status == 404, path
        assert SECRET not in body
        assert SIBLING_SECRET not in body


async def test_traversal_through_the_test_client(root: Path) -> None:
    async with TestClient(app_for(root)) as client:
        for url in (
            "/%2e%2e/secret.txt",
            "/%252e%252e/secret.txt",
            "/..%2fsecret.txt",
            "/..%5csecret.txt",
            "/%2e%2e%5csecret.txt",
            "/link-out",
            "/%00",
        ):
            response = await client.get(url)
            assert response.status_code == 404, url
            assert SECRET not in response.content


@pytest.mark.parametrize("path", TRAVERSALS)
def test_unsafe_paths_have_no_segments(path: str) -> None:
    segments = safe_segments(path)
    assert segments is None or all(
        ".." not in segment.split("/") and "\\" not in segment and "\x00" not in segment
        for segment in segments
    )


@pytest.mark.parametrize(
    ("path", "segments"),
    [
        ("/a/b.txt", ["a", "b.txt"]),
        ("//a///b.txt", ["a", "b.txt"]),
        ("/./a/./b", ["a", "b"]),
        ("/%2e%2e/x", ["%2e%2e", "x"]),
        ("/.hidden", [".hidden"]),
        ("/../x", None),
        ("/a\\b", None),
        ("/a\x00", None),
        ("/C:", None),
        ("/...", None),
        (b"/bytes", None),
    ],
)
def testsafe_segments(path: Any, segments: list[str] | None) -> None:
    assert safe_segments(path) == segments


PIECES = st.sampled_from(
    [
        "..", ".", "", "%2e%2e", "%2E%2E", "%252e%252e", "%2f", "%5c", "%252f", "\\", "..\\",
        "/", "//", "C:", "c:\\", "\x00", "%00", " ", ". .", "...", "secret.txt", "public",
        "public-secret", "sub", "hello.txt", "link-out", "link-abs", "link-sibling", "loop",
        "link-sibling/secret.txt", "../public-secret/secret.txt", "%2e%2e/secret.txt",
    ]
)  # fmt: skip
PATHS = st.one_of(
    st.lists(st.one_of(PIECES, st.text(max_size=8)), max_size=8).map(
        lambda parts: "/" + "/".join(parts)
    ),
    st.lists(PIECES, max_size=8).map(lambda parts: "/" + "".join(parts)),
    st.text(max_size=40),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(path=PATHS)
async def test_generated_paths_never_leak_and_never_fail(root: Path, path: str) -> None:
    handler = direct(root)
    response = await handler(get(path))
    assert isinstance(response, dict)
    content = await body_of(response)
    assert SECRET not in content
    assert SIBLING_SECRET not in content
    status, body = await asgi_get(app_for(root), path)
    assert status in (200, 404)
    assert SECRET not in body
    assert SIBLING_SECRET not in body


# --- shallot 2.0 apps and absurd dates (issue 13)


@pytest.mark.parametrize(
    "since",
    [
        "Mon, 01 Jan 99999999999 00:00:00 GMT",  # OverflowError in the date parser
        "Fri, 31 Dec 9999 23:59:59 -2359",  # past datetime's range once made UTC
        "Thu, 01 Jan 1970 00:00:00 +9999",
        "not a date at all",
        "",
    ],
)
async def test_absurd_if_modified_since_is_ignored_not_a_500(root: Path, since: str) -> None:
    async with TestClient(app_for(root)) as client:
        response = await client.get("/hello.txt", headers={"if-modified-since": since})
    assert response.status_code == 200
    assert response.content == HELLO


async def test_an_absolute_folder_is_used_as_it_is(root: Path) -> None:
    # shallot 2.0 joined the folder with os.path.join, so an absolute folder won over root_path
    absolute = str(root / "public")
    pile = apply_middleware(wrap_static(absolute, root_path="/nowhere/at/all"))(fallback)
    assert await body_of(await pile(get("/hello.txt"))) == HELLO
    assert await body_of(await apply_middleware(wrap_static(absolute))(fallback)(get("/x"))) == (
        b"not a file"
    )


async def test_a_relative_folder_stays_relative_to_root_path(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pile = apply_middleware(wrap_static("public/sub", root_path=str(root)))(fallback)
    assert await body_of(await pile(get("/nested.txt"))) == b"nested"
    monkeypatch.chdir(root)
    pile = apply_middleware(wrap_static("public"))(fallback)
    assert await body_of(await pile(get("/hello.txt"))) == HELLO


async def test_file_answers_carry_an_empty_body_beside_the_stream(root: Path) -> None:
    # shallot 2.0 middlewares and apps read response["body"] of a file answer
    response = await direct(root)(get("/hello.txt"))
    assert isinstance(response, dict)
    assert response["body"] == b""
    assert await body_of({"status": 200, "stream": response["stream"]}) == HELLO
    ranged = await direct(root)(get("/data.bin", range="bytes=0-9"))
    assert isinstance(ranged, dict)
    assert ranged["status"] == 206
    assert ranged["body"] == b""
    async with TestClient(app_for(root)) as client:  # and the stream is what goes out
        assert (await client.get("/hello.txt")).content == HELLO


# --- a static site: index files, folder redirects, a URL prefix, cache-control (issue 15)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("www")
    (site / "index.html").write_bytes(b"<h1>home</h1>")
    (site / "docs" / "guide").mkdir(parents=True)
    (site / "docs" / "index.html").write_bytes(b"<h1>docs</h1>")
    (site / "docs" / "guide" / "start.html").write_bytes(b"<h1>start</h1>")  # no index here
    (site / "assets").mkdir()
    (site / "assets" / "app.3f9a1c2b.js").write_bytes(b"let a = 1;")
    (site / "assets" / "site-0a1b2c3d4e5f.css").write_bytes(b"body {}")
    (site / "assets" / "facade-decade.css").write_bytes(b"p {}")  # words, not a hash
    (site / "assets" / "plain.css").write_bytes(b"a {}")
    return site


def site_app(site: Path, **options: Any) -> ASGIApp:
    return build_server(apply_middleware(wrap_static(str(site), **options))(fallback))


async def test_a_folder_is_answered_with_its_index_file(site: Path) -> None:
    async with TestClient(site_app(site)) as client:
        home = await client.get("/")
        docs = await client.get("/docs/")
        head = await client.head("/docs/")
        again = await client.get("/docs/", headers={"if-none-match": docs.headers["etag"]})
    assert (home.status_code, home.content) == (200, b"<h1>home</h1>")
    assert (docs.status_code, docs.content) == (200, b"<h1>docs</h1>")
    assert docs.headers["content-type"] == "text/html; charset=utf-8"
    assert (head.status_code, head.content, head.headers["etag"]) == (
        200,
        b"",
        docs.headers["etag"],
    )
    assert again.status_code == 304


async def test_a_folder_without_its_slash_is_redirected_to_it(site: Path) -> None:
    async with TestClient(site_app(site)) as client:
        moved = await client.get("/docs?lang=en")
        followed = await client.get("/docs", follow_redirects=True)
    assert moved.status_code == 301
    assert moved.headers["location"] == "/docs/?lang=en"
    assert moved.content == b""
    assert followed.content == b"<h1>docs</h1>"


async def test_the_redirect_keeps_root_path_and_encodes_the_path(tmp_path: Path) -> None:
    (tmp_path / "café menu").mkdir()
    (tmp_path / "café menu" / "index.html").write_bytes(b"menu")
    pile = apply_middleware(wrap_static(str(tmp_path)))(fallback)
    response = await pile({**get("/café menu"), "root_path": "/shop"})
    assert isinstance(response, dict)
    assert (response["status"], response["headers"]["location"]) == (
        301,
        "/shop/caf%C3%A9%20menu/",
    )


async def test_folders_without_an_index_and_index_none_go_on(site: Path) -> None:
    async with TestClient(site_app(site)) as client:
        assert (await client.get("/docs/guide/")).headers["x-fallback"] == "yes"
        assert (await client.get("/docs/guide")).headers["x-fallback"] == "yes"
    async with TestClient(site_app(site, index=None)) as client:
        assert (await client.get("/")).headers["x-fallback"] == "yes"
        assert (await client.get("/docs")).headers["x-fallback"] == "yes"
        assert (await client.get("/docs/index.html")).content == b"<h1>docs</h1>"


async def test_another_index_name(site: Path) -> None:
    async with TestClient(site_app(site, index="start.html")) as client:
        assert (await client.get("/docs/guide/")).content == b"<h1>start</h1>"
        assert (await client.get("/docs/")).headers["x-fallback"] == "yes"


async def test_a_prefix_mounts_the_folder_under_a_url_path(site: Path) -> None:
    async with TestClient(site_app(site, prefix="/static/")) as client:
        assert (await client.get("/static/assets/plain.css")).content == b"a {}"
        assert (await client.get("/static/")).content == b"<h1>home</h1>"
        root = await client.get("/static")
        assert (root.status_code, root.headers["location"]) == (301, "/static/")
        assert (await client.get("/static/docs/")).content == b"<h1>docs</h1>"
        # outside the prefix, and paths that only share its first letters, go on
        for path in ("/assets/plain.css", "/", "/staticx/assets/plain.css", "/stat"):
            assert (await client.get(path)).headers["x-fallback"] == "yes", path
        assert (await client.get("/static/../secret")).headers["x-fallback"] == "yes"


async def test_cache_control_for_every_file_and_immutable_for_fingerprinted_ones(
    site: Path,
) -> None:
    async with TestClient(site_app(site, cache_control="no-cache", fingerprinted=True)) as c:
        hashed = await c.get("/assets/app.3f9a1c2b.js")
        dashed = await c.get("/assets/site-0a1b2c3d4e5f.css")
        words = await c.get("/assets/facade-decade.css")
        page = await c.get("/")
        not_modified = await c.get("/", headers={"if-none-match": page.headers["etag"]})
    assert hashed.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert dashed.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert words.headers["cache-control"] == "no-cache"
    assert page.headers["cache-control"] == "no-cache"
    assert not_modified.headers["cache-control"] == "no-cache"
    async with TestClient(site_app(site)) as client:  # nothing asked, nothing set
        assert "cache-control" not in (await client.get("/assets/app.3f9a1c2b.js")).headers
    async with TestClient(site_app(site, fingerprinted=r"\.v\d+\.|plain")) as client:
        assert "immutable" in (await client.get("/assets/plain.css")).headers["cache-control"]
        assert "cache-control" not in (await client.get("/assets/app.3f9a1c2b.js")).headers


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"prefix": "static"}, ValueError),
        ({"prefix": 3}, ValueError),
        ({"index": "a/b.html"}, ValueError),
        ({"index": ".."}, ValueError),
        ({"index": ""}, ValueError),
        ({"cache_control": 3600}, TypeError),
        ({"fingerprinted": 3}, TypeError),
        ({"fingerprinted": "("}, ValueError),
    ],
)
def test_site_options_are_checked_once(site: Path, options: dict[str, Any], error: type) -> None:
    with pytest.raises(error):
        wrap_static(str(site), **options)


# --- one URL per file: no trailing slash, no leading "//"


@pytest.mark.parametrize(
    "path",
    [
        "/hello.txt/",
        "/sub/nested.txt/",
        "/hello.txt//",
        "/hello.txt/.",  # what "/hello.txt/" is once its dot segments are removed (RFC 3986)
        "//hello.txt",  # as a link, "//hello.txt" is the host hello.txt (RFC 3986 §4.2)
        "//sub/nested.txt",
        "///hello.txt",
    ],
)
async def test_a_file_has_one_url(root: Path, path: str) -> None:
    # a second URL for a file is a second cache key, and its relative links resolve elsewhere
    response = await direct(root)(get(path))
    assert isinstance(response, dict)
    assert response["headers"] == {"x-fallback": "yes"}


async def test_a_folder_keeps_its_slash_and_never_redirects_off_site(site: Path) -> None:
    pile = apply_middleware(wrap_static(str(site)))(fallback)

    async def answer(path: str) -> Response:
        # the exact path a server delivers: httpx would remove the dot segments, and read
        # "//docs" as a host
        response = await pile(get(path))
        assert isinstance(response, dict)
        return response

    assert (await answer("/docs/index.html/"))["headers"] == {"x-fallback": "yes"}
    assert await body_of(await answer("/docs/")) == b"<h1>docs</h1>"
    assert await body_of(await answer("/docs/.")) == b"<h1>docs</h1>"  # not a 301 to "/docs/./"
    moved = await answer("/docs")
    assert (moved["status"], moved["headers"]["location"]) == (301, "/docs/")
    # a 301 to "//docs/" would send the browser to the host "docs"
    assert (await answer("//docs"))["headers"] == {"x-fallback": "yes"}


async def test_a_304_says_what_its_200_holds_for_wrap_gzip(root: Path) -> None:
    etag, _ = await validators(root)
    response = await direct(root)(get("/hello.txt", **{"if-none-match": etag}))
    assert isinstance(response, dict)
    assert response["status"] == 304
    assert "content-type" not in response["headers"]  # not on the 304 (RFC 9110 §15.4.5)
    assert response["representation"] == {
        "content-type": "text/plain; charset=utf-8",
        "content-length": str(len(HELLO)),
    }
