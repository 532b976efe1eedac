"""Sessions: ``wrap_session`` keeps a small dict per browser in a signed cookie.

The session is JSON, signed and timestamped with itsdangerous (HMAC-SHA256), and readable by
the client: it must hold nothing secret, only nothing the client may change. The request gets
``request["session"]``, a dict of its own; after the handler, the cookie is written only when
the session changed, deleted when it became empty, and left alone otherwise. A cookie that is
missing, tampered with, signed by an unknown key, expired or unreadable gives an empty session,
never an error. itsdangerous is the optional ``sessions`` extra, imported when a session
middleware is built.
"""

from __future__ import annotations

import copy
import hashlib
import logging
from collections.abc import Sequence
from typing import Any

from .._types import Handler, HandlerResult, Middleware, Next, Request, Response
from ._headers import append_header
from .cookies import _cookie_header, format_set_cookie, parse_cookies

__all__ = ["wrap_session"]

logger = logging.getLogger("shallot")

#: Browsers drop a cookie longer than this (name, value and attributes; RFC 6265 §6.1).
_COOKIE_LIMIT = 4096
_SALT = "shallot.session"
_SAME_SITE = ("lax", "strict", "none")


def _keys(secret_key: str | bytes | Sequence[str | bytes]) -> list[bytes]:
    keys = [secret_key] if isinstance(secret_key, (str, bytes)) else list(secret_key)
    if not keys or any(not isinstance(key, (str, bytes)) or not key for key in keys):
        raise ValueError(
            "wrap_session: secret_key must be a non-empty str or bytes, or a list of them "
            "(the newest first)"
        )
    return [key.encode() if isinstance(key, str) else key for key in keys]


def wrap_session(
    secret_key: str | bytes | Sequence[str | bytes],
    *,
    cookie_name: str = "session",
    max_age: int | None = 14 * 24 * 3600,
    same_site: str = "lax",
    https_only: bool = False,
    path: str = "/",
    domain: str | None = None,
) -> Middleware:
    """Returns a middleware that gives each request ``request["session"]``, a dict kept in a
    signed cookie.

    ``secret_key`` signs the cookie; a list of keys rotates them: the first one signs, every
    one verifies, so a new key goes first and the old one stays until its cookies have
    expired. ``max_age`` (seconds) bounds both the cookie's life and the signature's; ``None``
    makes a cookie that ends with the browser session and a signature that never expires.
    ``same_site``, ``https_only`` (the ``Secure`` attribute), ``path`` and ``domain`` go on the
    cookie, which is always ``HttpOnly``. A handler changes the session in place, or returns
    ``"session"`` in its response: a dict replaces it, ``None`` ends it.

    Returns:
        The middleware. Websockets get the session too, read-only.

    Raises:
        ImportError: itsdangerous is not installed (``pip install -e '.[sessions]'``).
        ValueError: a key is empty, ``max_age`` is not a positive int, ``same_site`` is not
            lax, strict or none, or ``"none"`` without ``https_only`` (browsers refuse it).
    """
    try:
        from itsdangerous import BadData, URLSafeTimedSerializer
    except ImportError as error:  # pragma: no cover - the test extra installs it
        raise ImportError(
            "wrap_session needs itsdangerous: install shallot's 'sessions' extra "
            "(from a checkout: pip install -e '.[sessions]')"
        ) from error
    keys = _keys(secret_key)
    if max_age is not None and (
        isinstance(max_age, bool) or not isinstance(max_age, int) or max_age <= 0
    ):
        raise ValueError(f"wrap_session: max_age must be a positive int or None, not {max_age!r}")
    if not isinstance(same_site, str) or same_site.lower() not in _SAME_SITE:
        raise ValueError(f"wrap_session: same_site must be lax, strict or none, not {same_site!r}")
    if same_site.lower() == "none" and not https_only:
        raise ValueError("wrap_session: same_site='none' needs https_only=True (RFC 6265bis)")
    attributes: dict[str, Any] = {
        "path": path,
        "domain": domain,
        "max-age": max_age,
        "secure": https_only,
        "httponly": True,
        "samesite": same_site,
    }
    format_set_cookie(cookie_name, {"value": "", **attributes})  # checks name and attributes
    serializer = URLSafeTimedSerializer(
        list(reversed(keys)),  # itsdangerous signs with the last key
        salt=_SALT,
        signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha256},
    )

    def load(request: Request) -> tuple[dict[str, Any], bool]:
        """Returns the session and whether the request carried a session cookie at all."""
        cookies = request.get("cookies")
        if not isinstance(cookies, dict):
            cookies = parse_cookies(_cookie_header(request))
        value = cookies.get(cookie_name)
        if not value:
            return {}, False
        try:
            data = serializer.loads(value, max_age=max_age)
        except BadData:  # tampered, an unknown key, expired, or not JSON
            return {}, True
        return (data if isinstance(data, dict) else {}), True

    def store(response: Response, session: dict[str, Any] | None, sent: bool) -> Response:
        if session:
            value = serializer.dumps(session)
            header = format_set_cookie(cookie_name, {"value": value, **attributes})
            if len(header) > _COOKIE_LIMIT:
                logger.warning(
                    "session cookie is %d bytes; browsers drop cookies over %d",
                    len(header),
                    _COOKIE_LIMIT,
                )
        elif sent:
            header = format_set_cookie(cookie_name, {**attributes, "value": "", "max-age": 0})
        else:
            return response
        return {**response, "headers": append_header(response.get("headers"), "set-cookie", header)}

    def middleware(next_middleware: Next) -> Next:
        async def handle_session(handler: Handler, request: Request) -> HandlerResult:
            loaded, sent = load(request)
            session = copy.deepcopy(loaded)  # the handler's to change
            response = await next_middleware(handler, {**request, "session": session})
            if not isinstance(response, dict):
                return response  # a websocket takeover: no cookie can be set any more
            if "session" in response:
                session = response["session"]
                response = {key: value for key, value in response.items() if key != "session"}
                if session is not None and not isinstance(session, dict):
                    raise TypeError(f"response session must be a dict or None, not {session!r}")
            if session == loaded and (session or not sent):
                return response  # unchanged, and no unusable cookie to clear
            return store(response, session, sent)

        return handle_session

    return middleware
