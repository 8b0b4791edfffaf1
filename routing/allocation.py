"""Which virtual number X a new binding gets: the rules, as a pure function.

The store runs the same rules as one SQL query (and the database's unique indexes make them
hold under concurrency); tests check the query against this function.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MIN_BINDING_TTL = timedelta(minutes=1)
DEFAULT_BINDING_TTL = timedelta(hours=24)
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class PoolCandidate:
    number: str
    region: str
    last_released_at: datetime | None


def candidate_order(candidate: PoolCandidate, preferred_region: str | None
                    ) -> tuple[int, int, datetime, str]:
    """Sort key: preferred region first, never-released next, then least recently released."""
    in_region = 0 if preferred_region is None or candidate.region == preferred_region else 1
    never = 0 if candidate.last_released_at is None else 1
    return (in_region, never, candidate.last_released_at or _NEVER, candidate.number)


def eligible(
    candidate: PoolCandidate,
    *,
    busy_with_a: frozenset[str],
    busy_with_b: frozenset[str],
    released_to_a: Mapping[str, datetime],
    now: datetime,
    cooldown: timedelta,
) -> bool:
    """X is free for (A, B): no active (A, X) or (B, X) pair, and A's cool-down on X is over."""
    if candidate.number in busy_with_a or candidate.number in busy_with_b:
        return False
    last = released_to_a.get(candidate.number)
    return last is None or now - last >= cooldown


def choose_virtual_number(
    candidates: Iterable[PoolCandidate],
    *,
    busy_with_a: frozenset[str],
    busy_with_b: frozenset[str],
    released_to_a: Mapping[str, datetime],
    now: datetime,
    cooldown: timedelta,
    preferred_region: str | None = None,
) -> PoolCandidate | None:
    ok = [
        c
        for c in candidates
        if eligible(
            c,
            busy_with_a=busy_with_a,
            busy_with_b=busy_with_b,
            released_to_a=released_to_a,
            now=now,
            cooldown=cooldown,
        )
    ]
    if not ok:
        return None
    return min(ok, key=lambda c: candidate_order(c, preferred_region))


def cooling_down_until(
    candidates: Iterable[PoolCandidate],
    *,
    busy_with_a: frozenset[str],
    busy_with_b: frozenset[str],
    released_to_a: Mapping[str, datetime],
    now: datetime,
    cooldown: timedelta,
) -> datetime | None:
    """Why :func:`choose_virtual_number` found nothing: the earliest moment one of the numbers
    that only A's cool-down keeps from A (no active pair with A or B) becomes free again, or
    ``None`` when no number is held back by the cool-down alone (the pool is exhausted)."""
    ends = [
        released_to_a[c.number] + cooldown
        for c in candidates
        if c.number not in busy_with_a and c.number not in busy_with_b
        and c.number in released_to_a and now - released_to_a[c.number] < cooldown
    ]
    return min(ends, default=None)


def binding_ttl(requested: timedelta | None, default: timedelta) -> timedelta:
    """The validity a new binding gets; below one minute is refused by the caller."""
    ttl = requested if requested is not None else default
    if ttl < MIN_BINDING_TTL:
        seconds = int(ttl.total_seconds())
        raise ValueError(f"binding validity must be at least 60 s, got {seconds} s")
    return ttl
