"""The pure rules of idempotency keys: which keys are accepted, when two requests are the
same, which responses are kept."""

from __future__ import annotations

import pytest

from routing.errors import InvalidIdempotencyKey
from routing.idempotency import check_key, kept, request_digest


@pytest.mark.parametrize("key", ["a", "5f0c2a8e-7b1d-4c39-9a57-0e6f3d2b8c41", "x" * 255,
                                 "order:1/retry#2"])
def test_accepted_keys(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize("key", ["", "x" * 256, "a b", "tab\there", "ключ", "new\nline"])
def test_refused_keys_never_echo_the_key(key: str) -> None:
    with pytest.raises(InvalidIdempotencyKey) as refused:
        check_key(key)
    assert key.strip() == "" or key not in str(refused.value)


def test_the_same_request() -> None:
    base = request_digest("POST", "/v1/x", "", b'{"a": 1, "b": [1, 2]}')
    assert base == request_digest("post", "/v1/x", "", b'{ "b":[1,2],"a":1 }')
    assert base != request_digest("POST", "/v1/y", "", b'{"a": 1, "b": [1, 2]}')
    assert base != request_digest("POST", "/v1/x", "q=1", b'{"a": 1, "b": [1, 2]}')
    assert base != request_digest("POST", "/v1/x", "", b'{"a": 1, "b": [2, 1]}')
    assert base != request_digest("POST", "/v1/x", "", b'{"a": 1, "b": [1, 2]}',
                                  [("x-privnum-account", "acct-1")])
    # Not JSON: compared as bytes; an empty body is no body.
    assert request_digest("POST", "/v1/x", "", b"{nope") != request_digest(
        "POST", "/v1/x", "", b"{nope ")
    assert request_digest("POST", "/v1/x", "", b"") == request_digest("POST", "/v1/x", "", b" ")


@pytest.mark.parametrize(("status", "keep"), [
    (200, True), (201, True), (202, True), (404, True), (409, True), (422, True),
    (401, False), (408, False), (413, False), (415, False), (429, False), (500, False),
    (503, False)])
def test_kept_responses(status: int, keep: bool) -> None:
    assert kept(status) is keep
