"""The pure host and origin rules of ``shallot._origins`` (issue 14): no event loop."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shallot._origins import Origin, host_matcher, origin_check, parse_host, parse_origin


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("example.com", ("example.com", None)),
        ("Example.COM:8000", ("example.com", 8000)),
        ("example.com.", ("example.com", None)),
        ("[::1]:8000", ("[::1]", 8000)),
        ("127.0.0.1", ("127.0.0.1", None)),
        ("example.com:99999", None),
        ("a b", None),
        ("", None),
        ("user@example.com", None),
        ("example.com/path", None),
    ],
)
def test_parse_host(value: str, parsed: tuple[str, int | None] | None) -> None:
    assert parse_host(value) == parsed


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("https://example.com", Origin("https", "example.com", 443)),
        ("http://example.com", Origin("http", "example.com", 80)),
        ("HTTP://Example.com:8080", Origin("http", "example.com", 8080)),
        ("http://[::1]:3000", Origin("http", "[::1]", 3000)),
        ("null", None),
        ("example.com", None),
        ("https://", None),
    ],
)
def test_parse_origin(value: str, parsed: Origin | None) -> None:
    assert parse_origin(value) == parsed


@given(st.text(max_size=40))
def test_parsers_never_raise(value: str) -> None:
    parse_host(value)
    parse_origin(value)


def handshake(origin: str | None, host: str = "app.test", scheme: str = "ws") -> dict[str, Any]:
    headers = {"host": host} if origin is None else {"host": host, "origin": origin}
    return {"type": "websocket", "scheme": scheme, "headers": headers}


@pytest.mark.parametrize(
    ("origin", "host", "scheme"),
    [
        (None, "app.test", "ws"),  # a non-browser client sends no Origin
        ("http://app.test", "app.test", "ws"),
        ("http://app.test:80", "app.test", "ws"),
        ("http://APP.test", "app.test:80", "ws"),
        ("https://app.test", "app.test", "wss"),
        ("http://app.test:8000", "app.test:8000", "ws"),
        ("http://[::1]:8000", "[::1]:8000", "ws"),
    ],
)
def test_the_apps_own_origin_passes(origin: str | None, host: str, scheme: str) -> None:
    check = origin_check(None)
    assert check is not None
    assert check.refuses(handshake(origin, host, scheme)) is None


@pytest.mark.parametrize(
    ("origin", "host", "scheme"),
    [
        ("https://evil.example", "app.test", "ws"),
        ("https://app.test", "app.test", "ws"),  # another scheme is another origin
        ("http://app.test", "app.test", "wss"),
        ("http://app.test:8001", "app.test:8000", "ws"),
        ("http://app.test.evil.example", "app.test", "ws"),
        ("null", "app.test", "ws"),
        ("garbage", "app.test", "ws"),
        ("http://app.test", "not a host", "ws"),
    ],
)
def test_other_origins_are_refused(origin: str, host: str, scheme: str) -> None:
    check = origin_check(None)
    assert check is not None
    assert check.refuses(handshake(origin, host, scheme)) == origin


def test_without_host_the_servers_address_is_the_origin() -> None:
    check = origin_check(None)
    assert check is not None
    request = {"scheme": "ws", "server": ("127.0.0.1", 8000), "headers": {}}
    assert check.refuses({**request, "headers": {"origin": "http://127.0.0.1:8000"}}) is None
    assert check.refuses({**request, "headers": {"origin": "http://127.0.0.1:8001"}})


ALLOWED = ["https://app.example", "https://*.example.net", "http://localhost:3000", "cdn.test"]


@pytest.mark.parametrize(
    ("origin", "refused"),
    [
        ("https://app.example", False),
        ("https://app.example:443", False),
        ("http://app.example", True),
        ("https://app.example:8443", True),
        ("https://a.example.net", False),
        ("https://a.b.example.net", False),
        ("https://example.net", True),  # the pattern is for subdomains only
        ("https://evilexample.net", True),
        ("http://a.example.net", True),
        ("http://localhost:3000", False),
        ("http://localhost:3001", True),
        ("http://cdn.test:9999", False),  # a bare host: any scheme, any port
        ("https://cdn.test", False),
        ("https://x.cdn.test", True),
        ("null", True),
    ],
)
def test_allowed_origins(origin: str, refused: bool) -> None:
    check = origin_check(ALLOWED)
    assert check is not None
    assert (check.refuses(handshake(origin)) is not None) is refused


def test_null_passes_only_when_listed() -> None:
    check = origin_check(["null"])
    assert check is not None
    assert check.refuses(handshake("null")) is None


@pytest.mark.parametrize("everything", ["*", ["https://a.test", "*"]])
def test_a_star_turns_the_check_off(everything: Any) -> None:
    assert origin_check(everything) is None


@pytest.mark.parametrize(
    "entry", ["https://app.example/", "https://*", "ftp://a b", "*.", "a..b", "https://a.test:x"]
)
def test_malformed_allowed_origins_fail_at_build_time(entry: str) -> None:
    with pytest.raises(ValueError, match="allowed_origins"):
        origin_check([entry])


def test_allowed_origins_must_be_strings() -> None:
    with pytest.raises(TypeError, match="allowed_origins"):
        origin_check([b"https://a.test"])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("example.com", True),
        ("api.example.com", False),
        ("a.b.internal.test", True),
        ("internal.test", False),
        ("other.org", False),
    ],
)
def test_host_matcher(host: str, allowed: bool) -> None:
    matches = host_matcher("hosts", ["example.com", "*.internal.test"])
    assert matches is not None
    assert matches(host) is allowed


@pytest.mark.parametrize(
    "host",
    [
        ".internal.test",
        "..internal.test",
        "a..internal.test",
        ".a.internal.test",
        "a!.internal.test",
        "a b.internal.test",
        "a\x00.internal.test",
        "\u00e9.internal.test",
        "a.internal.test.",
    ],
)
def test_a_pattern_refuses_malformed_subdomains(host: str) -> None:
    matches = host_matcher("hosts", "*.internal.test")
    assert matches is not None
    assert not matches(host)
    for valid in ["a.internal.test", "xn--bcher-kva.internal.test", "a-1.b_2.internal.test"]:
        assert matches(valid)


@pytest.mark.parametrize("value", [".example.com", "a..example.com", "a.example.com.."])
def test_malformed_hosts_do_not_match_a_pattern(value: str) -> None:
    matches = host_matcher("hosts", "*.example.com")
    assert matches is not None
    host = parse_host(value)
    assert host is None or not matches(host[0])
    check = origin_check(["https://*.example.com"])
    assert check is not None
    origin = f"https://{value}"
    assert check.refuses(handshake(origin)) == origin


def test_only_one_trailing_dot_is_dropped() -> None:
    assert parse_host("example.com.") == ("example.com", None)
    assert parse_host("example.com..:80") == ("example.com.", 80)


def test_host_matcher_star_and_errors() -> None:
    assert host_matcher("hosts", "*") is None
    with pytest.raises(ValueError, match="hosts"):
        host_matcher("hosts", ["http://example.com"])
    with pytest.raises(TypeError, match="hosts"):
        host_matcher("hosts", [1])  # type: ignore[list-item]
