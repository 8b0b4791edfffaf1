"""Pure rules of webhook delivery: event filters, URLs, the retry ladder, signatures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from routing.errors import InvalidInput
from routing.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    EventFilter,
    RetryLadder,
    check_url,
    signed_headers,
    verify,
)

NOW = datetime(2026, 7, 1, 9, 30, tzinfo=UTC)
BODY = b'{"events":[{"id":"evt_1","type":"call.ended"}]}'


@pytest.mark.parametrize(("text", "event", "takes"), [
    ("*", "cdr", True),
    ("call.*", "call.rejected", True),
    ("call.*", "cdr", False),
    ("binding.created, cdr", "cdr", True),
    ("binding.created,cdr", "binding.released", False),
    ("", "binding.expired", True),
])
def test_event_filters(text: str, event: str, takes: bool) -> None:
    assert EventFilter.parse(text).matches(event) is takes


@pytest.mark.parametrize("text", ["call.rang", "bindings.*", "call", "*.ended"])
def test_unknown_event_types_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput, match="unknown event type"):
        EventFilter.parse(text)


@pytest.mark.parametrize(("url", "where"), [
    ("https://hooks.example.com/privnum", ("hooks.example.com", 443)),
    ("http://127.0.0.1:17950/h?x=1", ("127.0.0.1", 17950)),
])
def test_http_urls_are_taken(url: str, where: tuple[str, int]) -> None:
    assert check_url(url) == where


@pytest.mark.parametrize(("url", "why"), [
    ("ftp://hooks.example.com/x", "http:// or https://"),
    ("hooks.example.com/x", "http:// or https://"),
    ("https:///nohost", "no host"),
    ("https://user:pw@hooks.example.com/", "credentials"),
    ("https://hooks.example.com:99999/", "not a URL"),
    ("https://hooks.example.com/#frag", "fragment"),
])
def test_other_urls_are_refused(url: str, why: str) -> None:
    with pytest.raises(InvalidInput, match=why):
        check_url(url)


def test_the_default_ladder_then_dead_letter() -> None:
    ladder = RetryLadder()
    delays = [ladder.next_attempt(n, NOW) for n in range(1, 8)]
    assert [d - NOW if d else None for d in delays] == [
        timedelta(minutes=m) for m in (1, 4, 9, 106, 203, 300)] + [None]
    assert ladder.max_attempts == 7
    with pytest.raises(ValueError):
        RetryLadder.of_minutes([1, 0])


def test_a_signature_verifies_only_for_its_body_secret_and_window() -> None:
    stamp = int(NOW.timestamp())
    headers = signed_headers("s3cret-s3cret-s3cret", stamp, BODY)
    assert headers[SIGNATURE_HEADER].startswith("v1=")
    assert verify("s3cret-s3cret-s3cret", headers, BODY, NOW + timedelta(minutes=4))
    lower = {k.lower(): v for k, v in headers.items()}
    assert verify("s3cret-s3cret-s3cret", lower, BODY, NOW)
    assert not verify("another-secret-0000", headers, BODY, NOW)
    assert not verify("s3cret-s3cret-s3cret", headers, BODY + b" ", NOW)
    assert not verify("s3cret-s3cret-s3cret", headers, BODY, NOW + timedelta(minutes=6))
    replayed = {**headers, TIMESTAMP_HEADER: str(stamp + 60)}  # the body re-sent later
    assert not verify("s3cret-s3cret-s3cret", replayed, BODY, NOW)
