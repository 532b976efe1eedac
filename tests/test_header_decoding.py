"""The header decoder (``shallot._header_decoding``): every byte kept, names and repeating
values shared between requests, every table bounded."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shallot._header_decoding import HeaderDecoder


@given(st.lists(st.tuples(st.binary(min_size=1, max_size=12), st.binary(max_size=40)), max_size=8))
def test_decoding_headers_never_fails_and_keeps_every_byte(raw: list[tuple[bytes, bytes]]) -> None:
    expected: dict[str, list[str]] = {}
    for name, value in raw:
        expected.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    joined = {
        # RFC 9110 §5.3 joins with ","; cookie crumbs are joined with "; " (RFC 9113 §8.2.3)
        name: ("; " if name == "cookie" else ",").join(values)
        for name, values in expected.items()
    }
    assert HeaderDecoder()(raw) == joined


def test_header_names_are_shared_between_requests_and_their_memory_is_bounded() -> None:
    decode_headers = HeaderDecoder()
    first = decode_headers([(b"X-Shared-Name", b"1")])
    second = decode_headers([(b"X-Shared-Name", b"2"), (bytearray(b"X-Other"), b"3")])
    assert first == {"x-shared-name": "1"}
    assert second == {"x-shared-name": "2", "x-other": "3"}
    assert next(iter(first)) is next(iter(second))  # one string for every request
    for number in range(3000):  # names a client makes up
        assert decode_headers([(b"x-made-up-%d" % number, b"v")]) == {f"x-made-up-{number}": "v"}
    assert decode_headers.remembered()[0] <= decode_headers.max_names


def test_values_that_repeat_from_client_to_client_are_shared_and_bounded() -> None:
    decode_headers = HeaderDecoder(max_names=0)  # even with no room for names
    agent = b"Mozilla/5.0 (X11; Linux x86_64) shared-value-test"
    first = decode_headers([(b"user-agent", agent), (b"sec-websocket-key", b"a2V5LTE=")])
    second = decode_headers([(b"user-agent", agent), (b"sec-websocket-key", b"a2V5LTE=")])
    assert first == second == {"user-agent": agent.decode(), "sec-websocket-key": "a2V5LTE="}
    assert first["user-agent"] is second["user-agent"]
    assert first["sec-websocket-key"] is not second["sec-websocket-key"]  # unique per client
    for number in range(5000):
        value = b"agent %d" % number
        assert decode_headers([(b"user-agent", value)]) == {"user-agent": value.decode()}
    assert decode_headers.remembered()[1] <= decode_headers.max_values


def test_header_lists_of_repeating_headers_are_remembered_apart_and_bounded() -> None:
    decode_headers = HeaderDecoder(max_lists=4)
    first = decode_headers([(b"host", b"example.org"), (b"accept", b"*/*")])
    first["accept"] = "text/html"  # a middleware's change to its request's dict ...
    second = decode_headers([(b"host", b"example.org"), (b"accept", b"*/*")])
    assert second == {"host": "example.org", "accept": "*/*"}  # ... stays in that request
    assert decode_headers.remembered()[2] == 1
    with_cookie = [(b"host", b"example.org"), (b"cookie", b"session=secret")]
    assert decode_headers(with_cookie) == {"host": "example.org", "cookie": "session=secret"}
    assert decode_headers([(b"accept", b"a"), (b"accept", b"b")]) == {"accept": "a,b"}
    assert decode_headers.remembered()[2] == 1  # never a cookie, never a repeated header
    for number in range(50):
        assert decode_headers([(b"host", b"h%d" % number)]) == {"host": f"h{number}"}
    assert decode_headers.remembered()[2] <= 4


def test_a_multipart_content_type_is_not_shared_since_its_boundary_is_new_each_time() -> None:
    # Each upload's boundary is random: shared, they filled the table with values used once.
    decode_headers = HeaderDecoder()
    for number in range(10):
        value = b"multipart/form-data; boundary=----form%d" % number
        assert decode_headers([(b"content-type", value)]) == {"content-type": value.decode()}
    assert decode_headers.remembered()[1:] == (0, 0)
    decode_headers([(b"content-type", b"application/json")])
    assert decode_headers.remembered()[1:] == (1, 1)  # the values that do repeat still are
