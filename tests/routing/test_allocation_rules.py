"""The pure allocation rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from routing.allocation import (
    PoolCandidate,
    binding_ttl,
    choose_virtual_number,
    cooling_down_until,
    eligible,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _c(number: str, region: str = "", hours_ago: float | None = None) -> PoolCandidate:
    last = None if hours_ago is None else NOW - timedelta(hours=hours_ago)
    return PoolCandidate(number, region, last)


def _choose(pool: list[PoolCandidate], region: str | None = None,
            busy_a: frozenset[str] = frozenset(), busy_b: frozenset[str] = frozenset()
            ) -> str | None:
    got = choose_virtual_number(pool, busy_with_a=busy_a, busy_with_b=busy_b,
                                released_to_a={}, now=NOW, cooldown=HOUR,
                                preferred_region=region)
    return None if got is None else got.number


@pytest.mark.parametrize(("pool", "region", "expected"), [
    ([_c("x1", hours_ago=1), _c("x2")], None, "x2"),                      # never released first
    ([_c("x1", hours_ago=1), _c("x2", hours_ago=5)], None, "x2"),         # least recently
    ([_c("x2", hours_ago=5), _c("x1", hours_ago=5)], None, "x1"),         # tie: by number
    ([_c("x1", "SH"), _c("x2", "BJ", 9)], "BJ", "x2"),                    # region beats LRR
    ([_c("x1", "SH"), _c("x2", "BJ", 9)], None, "x1"),
    ([_c("x1", "SH")], "BJ", "x1"),                                       # fallback region
    ([], None, None),
])
def test_order(pool: list[PoolCandidate], region: str | None, expected: str | None) -> None:
    assert _choose(pool, region) == expected


@pytest.mark.parametrize(("busy_a", "busy_b", "expected"), [
    ({"x1"}, set(), "x2"), (set(), {"x1"}, "x2"), ({"x1"}, {"x2"}, None), (set(), set(), "x1"),
])
def test_busy_pairs_are_skipped(busy_a: set[str], busy_b: set[str], expected: str | None) -> None:
    assert _choose([_c("x1"), _c("x2", hours_ago=1)], busy_a=frozenset(busy_a),
                   busy_b=frozenset(busy_b)) == expected


@pytest.mark.parametrize(("released_ago", "ok"), [
    (timedelta(0), False), (HOUR - timedelta(seconds=1), False), (HOUR, True), (2 * HOUR, True),
])
def test_cooldown_boundary(released_ago: timedelta, ok: bool) -> None:
    assert eligible(_c("x1"), busy_with_a=frozenset(), busy_with_b=frozenset(),
                    released_to_a={"x1": NOW - released_ago}, now=NOW, cooldown=HOUR) is ok


@pytest.mark.parametrize(("requested", "expected"), [
    (None, timedelta(hours=24)), (timedelta(seconds=60), timedelta(seconds=60)),
    (timedelta(days=2), timedelta(days=2)),
])
def test_binding_ttl(requested: timedelta | None, expected: timedelta) -> None:
    assert binding_ttl(requested, timedelta(hours=24)) == expected


def test_binding_ttl_refuses_below_a_minute() -> None:
    with pytest.raises(ValueError, match="at least 60 s"):
        binding_ttl(timedelta(seconds=59), timedelta(hours=24))


@pytest.mark.parametrize(("released_ago", "busy_a", "busy_b", "expected"), [
    # x1 released 10 min ago (cooling), x2 50 min ago (cooling): x2 is free first
    ({"x1": 10, "x2": 50}, set(), set(), NOW + timedelta(minutes=10)),
    ({"x1": 10}, set(), set(), NOW + timedelta(minutes=50)),
    # x2 is busy with B as well: waiting for it does not help, x1 decides
    ({"x1": 10, "x2": 50}, set(), {"x2"}, NOW + timedelta(minutes=50)),
    ({"x1": 10, "x2": 50}, {"x1", "x2"}, set(), None),  # busy, not cooling: exhausted
    ({"x1": 60}, set(), set(), None),  # the cool-down is over: not the reason
    ({}, set(), set(), None),
])
def test_cooling_down_until_names_the_first_number_back(
        released_ago: dict[str, int], busy_a: set[str], busy_b: set[str],
        expected: datetime | None) -> None:
    pool = [_c("x1"), _c("x2")]
    released = {x: NOW - timedelta(minutes=m) for x, m in released_ago.items()}
    got = cooling_down_until(pool, busy_with_a=frozenset(busy_a), busy_with_b=frozenset(busy_b),
                             released_to_a=released, now=NOW, cooldown=HOUR)
    assert got == expected
