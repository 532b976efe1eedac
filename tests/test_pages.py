"""html() and redirect(): the response dicts browsers get (issue 15)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shallot import build_server
from shallot._types import Request, Response
from shallot.response import html, redirect
from shallot.testing import TestClient


def test_html_is_utf8_text_html() -> None:
    assert html("<p>café</p>") == {
        "status": 200,
        "headers": {"content-type": "text/html; charset=utf-8"},
        "body": "<p>café</p>".encode(),
    }


def test_html_takes_a_status_and_headers_and_one_content_type_in_any_case() -> None:
    response = html("", status=404, headers={"Content-Type": "text/html", "x-a": "b"})
    assert response["status"] == 404
    assert response["headers"] == {"Content-Type": "text/html", "x-a": "b"}


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_sets_location_and_an_empty_body(status: int) -> None:
    assert redirect("/todos/1", status=status) == {
        "status": status,
        "headers": {"location": "/todos/1"},
        "body": b"",
    }


def test_redirect_defaults_to_307_and_keeps_extra_headers() -> None:
    response = redirect("https://example.com/a?b=c#d", headers={"cache-control": "no-store"})
    assert response["status"] == 307
    assert response["headers"] == {
        "location": "https://example.com/a?b=c#d",
        "cache-control": "no-store",
    }


def test_redirect_percent_encodes_what_a_url_cannot_hold_and_keeps_escapes() -> None:
    assert redirect("/caf\u00e9 menu?q=a b")["headers"]["location"] == "/caf%C3%A9%20menu?q=a%20b"
    assert redirect("/a%2Fb")["headers"]["location"] == "/a%2Fb"


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("%", "%25"),
        ("/100%", "/100%25"),
        ("/a%zz?q=50%+off", "/a%25zz?q=50%25+off"),
        ("/a%2", "/a%252"),
        ("/a%2f%C3%A9", "/a%2f%C3%A9"),  # escapes, in either case, stay as they are
    ],
)
def test_redirect_encodes_a_percent_that_begins_no_escape(url: str, location: str) -> None:
    assert redirect(url)["headers"]["location"] == location


#: What a ``location`` may hold: printable ASCII, each ``%`` beginning an escape (RFC 3986 §2).
_URI = re.compile(r"(?:[!#$&-;=?-\[\]_a-z~]|%[0-9A-Fa-f]{2})+")


@given(st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=30))
def test_redirect_location_is_always_a_uri_reference(url: str) -> None:
    assert _URI.fullmatch(redirect(url)["headers"]["location"])


@pytest.mark.parametrize(
    ("url", "status", "error"),
    [
        ("/a", 200, ValueError),
        ("/a", 304, ValueError),
        ("/a", True, ValueError),
        ("", 307, ValueError),
        ("/a\r\nset-cookie: x=1", 307, ValueError),
        (b"/a", 307, TypeError),
    ],
)
def test_redirect_refuses_what_is_no_redirect(url: Any, status: Any, error: type) -> None:
    with pytest.raises(error):
        redirect(url, status=status)


async def test_a_browser_follows_the_redirect_to_the_page() -> None:
    async def handler(request: Request) -> Response:
        if request["path"] == "/old":
            return redirect("/new", status=308)
        return html(f"<h1>{request['method']} {request['path']}</h1>")

    async with TestClient(build_server(handler)) as client:
        moved = await client.post("/old", content=b"x")
        assert (moved.status_code, moved.headers["location"], moved.content) == (308, "/new", b"")
        followed = await client.get("/old", follow_redirects=True)
    assert followed.text == "<h1>GET /new</h1>"
    assert followed.headers["content-type"] == "text/html; charset=utf-8"
