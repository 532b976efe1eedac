"""Response builders for browsers: ``html`` pages and ``redirect`` answers.

Pure functions, like the rest of ``shallot.response`` (which re-exports them): each returns a
response dict and does no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote

from ._types import Response

__all__ = ["REDIRECT_STATUSES", "html", "redirect"]

#: The statuses ``redirect`` sends (RFC 9110 §15.4): 301 and 302 let clients turn a POST into
#: a GET, 303 asks for a GET, 307 and 308 repeat the method and body.
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: Kept as they are in a ``location``: the URI reserved and unreserved characters, and ``%`` so
#: that what is already escaped stays as it is (RFC 3986 §2).
_URI_SAFE = ":/?#[]@!$&'()*+,;=-._~%"
#: A ``%`` that begins no escape: a URL cannot hold it as it is (RFC 3986 §2.4), so it is one.
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_HTML_UTF8 = "text/html; charset=utf-8"


def html(body: str = "", status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """Returns a ``text/html; charset=utf-8`` response holding ``body`` as UTF-8.

    Headers given in ``headers`` are added; a ``content-type`` among them, in any case,
    replaces the default one.
    """
    all_headers = {"content-type": _HTML_UTF8}
    if headers:
        for name, value in headers.items():
            if name.lower() == "content-type":
                del all_headers["content-type"]
            all_headers[name] = value
    return {"status": status, "headers": all_headers, "body": body.encode()}


def redirect(url: str, status: int = 307, headers: Mapping[str, str] | None = None) -> Response:
    """Returns a redirect to ``url`` (a path such as ``/todos/1`` or a full URL), sent as the
    ``location`` header with an empty body.

    ``307`` (the default) and ``308`` make the client repeat the method and body; ``303`` makes
    it follow with a GET (after a form POST); ``301`` and ``302`` are the old, ambiguous forms.
    Characters a URL cannot hold (spaces, non-ASCII, a ``%`` that begins no escape) are
    percent-encoded as UTF-8; ``%``-escapes already in ``url`` are kept.

    Raises:
        TypeError: ``url`` is not a str.
        ValueError: ``status`` is not one of 301, 302, 303, 307, 308, or ``url`` is empty or
            holds a control character (CR and LF would split the header).
    """
    if not isinstance(url, str):
        raise TypeError(f"redirect: url must be a str, not {type(url).__name__}")
    if status not in REDIRECT_STATUSES or type(status) is not int:
        raise ValueError(f"redirect: status must be one of 301, 302, 303, 307, 308, not {status!r}")
    if not url or any(ord(char) < 0x20 or ord(char) == 0x7F for char in url):
        raise ValueError(f"redirect: {url!r} is not a URL (empty, or a control character)")
    location = _STRAY_PERCENT.sub("%25", quote(url, safe=_URI_SAFE))
    return {"status": status, "headers": {"location": location, **(headers or {})}, "body": b""}
