"""wrap_proxy_headers: client, scheme and host from trusted proxies only (issue 14)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shallot._types import Request
from shallot.middlewares import apply_middleware, wrap_proxy_headers
from shallot.middlewares.proxy_headers import _node, _parse_forwarded

PROXY = ("10.0.0.5", 40000)


async def seen(request: Request) -> Any:
    return request  # the stub handler answers with the request it was given


async def through(
    trusted: Any, *, client: Any = PROXY, kind: str = "http", **headers: str
) -> Request:
    handle = apply_middleware(wrap_proxy_headers(trusted))(seen)
    headers = {name.replace("_", "-"): value for name, value in headers.items()}
    request = {
        "type": kind,
        "method": "WS" if kind == "websocket" else "GET",
        "scheme": "ws" if kind == "websocket" else "http",
        "client": client,
        "headers": {"host": "backend:8000", **headers},
    }
    result = await handle(request)
    assert isinstance(result, dict)
    return result


async def test_x_forwarded_from_a_trusted_proxy() -> None:
    request = await through(
        "10.0.0.0/8",
        x_forwarded_for="203.0.113.7",
        x_forwarded_proto="https",
        x_forwarded_host="app.example",
    )
    assert request["client"] == ("203.0.113.7", 0)
    assert request["scheme"] == "https"
    assert request["headers"]["host"] == "app.example"


async def test_an_untrusted_peer_changes_nothing() -> None:
    headers = {"x_forwarded_for": "1.2.3.4", "x_forwarded_proto": "https"}
    request = await through(["10.0.0.0/8"], client=("198.51.100.1", 5), **headers)
    assert request["client"] == ("198.51.100.1", 5)
    assert request["scheme"] == "http"
    assert request["headers"]["host"] == "backend:8000"
    assert (await through("10.0.0.0/8", client=None, **headers))["client"] is None


async def test_a_spoofed_entry_left_of_the_trusted_chain_is_ignored() -> None:
    # The client sent "X-Forwarded-For: 1.2.3.4" itself; two trusted proxies appended.
    request = await through(
        ["10.0.0.0/8"],
        x_forwarded_for="1.2.3.4, 203.0.113.7, 10.0.0.9",
        x_forwarded_proto="http, https, http",
    )
    assert request["client"] == ("203.0.113.7", 0)
    assert request["scheme"] == "https"  # what the client used to reach the first proxy


async def test_a_chain_of_trusted_proxies_only_gives_the_leftmost() -> None:
    request = await through("10.0.0.0/8", x_forwarded_for="10.1.1.1, 10.0.0.9")
    assert request["client"] == ("10.1.1.1", 0)


async def test_one_proto_for_many_hops_is_used() -> None:
    request = await through("*", x_forwarded_for="1.2.3.4, 5.6.7.8", x_forwarded_proto="https")
    assert request["client"] == ("1.2.3.4", 0)  # "*": every hop trusted, the leftmost is it
    assert request["scheme"] == "https"
    request = await through("*", x_forwarded_for="5.6.7.8", x_forwarded_proto="https")
    assert request["scheme"] == "https"


async def test_forwarded_rfc_7239() -> None:
    request = await through(
        "10.0.0.0/8",
        forwarded='for=1.2.3.4, for="[2001:db8:cafe::17]:4711";proto=https;host="app.example"'
        ", for=10.0.0.9;proto=http",
        x_forwarded_for="9.9.9.9",  # Forwarded wins when both are present
    )
    assert request["client"] == ("2001:db8:cafe::17", 4711)
    assert request["scheme"] == "https"
    assert request["headers"]["host"] == "app.example"


@pytest.mark.parametrize("forwarded", ['for="1.2.3.4', "for=1.2.3.4;", "for=1.2.3.4 for=5", "=x"])
async def test_a_malformed_forwarded_header_changes_nothing(forwarded: str) -> None:
    request = await through("10.0.0.5", forwarded=forwarded)
    assert request["client"] == PROXY
    assert request["scheme"] == "http"


@pytest.mark.parametrize("kind", ["http", "websocket"])
async def test_x_forwarded_proto_and_host_are_read_without_x_forwarded_for(kind: str) -> None:
    request = await through("10.0.0.5", kind=kind, x_forwarded_proto="https")
    assert request["client"] == PROXY
    assert request["scheme"] == ("wss" if kind == "websocket" else "https")
    assert request["headers"]["host"] == "backend:8000"
    request = await through("10.0.0.5", kind=kind, x_forwarded_host="app.example")
    assert request["scheme"] == ("ws" if kind == "websocket" else "http")
    assert request["headers"]["host"] == "app.example"
    # Without X-Forwarded-For the peer is the only hop known: its own entry, the rightmost.
    request = await through(
        "10.0.0.5", x_forwarded_proto="https, http", x_forwarded_host="evil.example, app.example"
    )
    assert request["client"] == PROXY
    assert request["scheme"] == "http"
    assert request["headers"]["host"] == "app.example"
    request = await through("10.0.0.5", x_forwarded_for=" , ", x_forwarded_proto="https")
    assert (request["client"], request["scheme"]) == (PROXY, "https")


@pytest.mark.parametrize(
    ("trusted", "headers", "client"),
    [
        ("10.0.0.5", {"x_forwarded_for": "garbage"}, PROXY),
        ("10.0.0.5", {"x_forwarded_for": "1.2.3.4:99999"}, PROXY),
        ("10.0.0.5", {"x_forwarded_for": "[1.2.3.4]"}, PROXY),
        ("10.0.0.5", {"x_forwarded_for": "unknown"}, PROXY),
        ("10.0.0.0/8", {"x_forwarded_for": "1.2.3.4, garbage, 10.0.0.9"}, ("10.0.0.9", 0)),
        ("10.0.0.0/8", {"x_forwarded_for": "1.2.3.4, 10.0.0.9:70000"}, PROXY),
        ("*", {"x_forwarded_for": "garbage, 1.2.3.4"}, ("1.2.3.4", 0)),
        ("*", {"x_forwarded_for": "1.2.3.4, garbage"}, PROXY),
        ("10.0.0.5", {"forwarded": "for=_hidden"}, PROXY),
        ("10.0.0.5", {"forwarded": "for=unknown"}, PROXY),
        ("10.0.0.5", {"forwarded": 'for="[2001:db8::1]:99999"'}, PROXY),
        ("10.0.0.5", {"forwarded": 'for="1.2.3.4:_port"'}, ("1.2.3.4", 0)),
        ("10.0.0.0/8", {"forwarded": "for=1.2.3.4, for=unknown, for=10.0.0.9"}, ("10.0.0.9", 0)),
        ("10.0.0.0/8", {"forwarded": "for=1.2.3.4, proto=http, for=10.0.0.9"}, ("10.0.0.9", 0)),
    ],
)
async def test_an_unusable_forwarded_address_leaves_the_hop_before_it(
    trusted: str, headers: dict[str, str], client: tuple[str, int]
) -> None:
    request = await through(trusted, **headers)
    assert request["client"] == client


async def test_a_hidden_client_still_gives_scheme_and_host() -> None:
    # RFC 7239 §6: "unknown" and "_obfuscated" nodes hide the client, not the hop's proto/host.
    request = await through("10.0.0.5", forwarded="for=unknown;proto=HTTPS;host=app.example")
    assert request["client"] == PROXY
    assert request["scheme"] == "https"
    assert request["headers"]["host"] == "app.example"
    request = await through("10.0.0.5", forwarded="proto=https")  # no for=: the same
    assert (request["client"], request["scheme"]) == (PROXY, "https")
    request = await through("10.0.0.5", x_forwarded_for="garbage", x_forwarded_proto="https")
    assert (request["client"], request["scheme"]) == (PROXY, "https")


@pytest.mark.parametrize(
    ("value", "node"),
    [
        ("1.2.3.4", ("1.2.3.4", 0)),
        (" 1.2.3.4:8080 ", ("1.2.3.4", 8080)),
        ("1.2.3.4:65535", ("1.2.3.4", 65535)),
        ("[2001:db8::1]:4711", ("2001:db8::1", 4711)),
        ("[2001:db8::1]", ("2001:db8::1", 0)),
        ("2001:db8::1", ("2001:db8::1", 0)),
        ("1.2.3.4:_obf", ("1.2.3.4", 0)),  # an obfuscated port hides the port only
        ("garbage", None),
        ("unknown", None),
        ("_hidden", None),
        ("", None),
        ("1.2.3.4:65536", None),
        ("1.2.3.4:99999", None),
        ("1.2.3.4:", None),
        ("1.2.3.4:abc", None),
        ("1.2.3.4:\u00b2", None),
        ("1.2.3", None),
        ("[1.2.3.4]:80", None),
        ("[2001:db8::1", None),
        ("[2001:db8::1]x", None),
        ("[::1]:_", None),
    ],
)
def test_node(value: str, node: tuple[str, int] | None) -> None:
    assert _node(value) == node


@given(st.text(max_size=40))
def test_node_never_raises_and_gives_only_addresses(value: str) -> None:
    node = _node(value)
    if node is not None:
        assert 0 <= node[1] <= 65535


async def test_websockets_get_ws_schemes() -> None:
    request = await through(
        "10.0.0.5", kind="websocket", x_forwarded_for="1.2.3.4", x_forwarded_proto="https"
    )
    assert request["scheme"] == "wss"
    request = await through("10.0.0.5", kind="websocket", forwarded="for=1.2.3.4;proto=http")
    assert request["scheme"] == "ws"


async def test_unusable_proto_and_host_are_ignored() -> None:
    request = await through(
        "10.0.0.5",
        x_forwarded_for="1.2.3.4",
        x_forwarded_proto="gopher",
        x_forwarded_host="evil.example/path",
    )
    assert request["client"] == ("1.2.3.4", 0)
    assert request["scheme"] == "http"
    assert request["headers"]["host"] == "backend:8000"


async def test_the_callers_request_is_not_changed() -> None:
    handle = apply_middleware(wrap_proxy_headers("*"))(seen)
    original = {"type": "http", "client": PROXY, "headers": {"x-forwarded-for": "1.2.3.4"}}
    result = await handle(original)
    assert isinstance(result, dict)
    assert result["client"] == ("1.2.3.4", 0)
    assert original["client"] == PROXY


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "proxy.local", "", "*.example.com"])
def test_trusted_entries_are_checked_once(bad: str) -> None:
    with pytest.raises(ValueError, match="wrap_proxy_headers"):
        wrap_proxy_headers(["127.0.0.1", bad])
    with pytest.raises(TypeError, match="wrap_proxy_headers"):
        wrap_proxy_headers([10])  # type: ignore[list-item]


def test_parse_forwarded() -> None:
    assert _parse_forwarded('For="[::1]:80";Proto=https, for=unknown') == [
        {"for": "[::1]:80", "proto": "https"},
        {"for": "unknown"},
    ]
    assert _parse_forwarded('for="a\\"b"') == [{"for": 'a"b'}]
    assert _parse_forwarded("for=1.2.3.4,") is None


@given(st.text(max_size=60))
def test_parse_forwarded_never_raises(value: str) -> None:
    _parse_forwarded(value)
