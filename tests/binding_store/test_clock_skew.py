"""Redis keeps its own clock. With the application's clock a week behind or ahead of it, the
reveal quota, the reveal velocity and the hot index behave exactly as with no skew."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from binding_store.crypto import BuyerCipher
from binding_store.db import Database
from binding_store.index_rebuild import rebuild_index
from binding_store.redis_index import DEFAULT_KEEP_ENDED, RedisIndex
from binding_store.reveal_counters import RedisRevealCounters
from binding_store.route_lookup import StoreRouteLookup
from routing.decide import decide
from routing.model import CallRequest
from routing.reasons import Reason
from tests.binding_store.test_bindings_helpers import A1, A2, B1, B2, X1, X2, seed, store

pytestmark = pytest.mark.redis

WEEK = timedelta(days=7)
MINUTE_MS = 60_000


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def redis_now(raw: aioredis.Redis) -> datetime:
    seconds, micros = await raw.time()
    return datetime.fromtimestamp(seconds + micros / 1e6, UTC)


KEEP_ENDED_MINUTES = DEFAULT_KEEP_ENDED // 60
STORE_TIMEOUT = 15.0


@dataclass(frozen=True)
class Observed:
    quota_taken: int
    quota_used: int
    quota_minutes_left: int
    velocity_hits: tuple[int, ...]
    velocity_minutes_left: int
    index_minutes_left: tuple[int, int]
    reasons: tuple[Reason, ...]
    index_hits: int


def minutes(pttl: int) -> int:
    # Whole minutes left, rounded: a run takes well under 30 s.
    assert pttl > 0, "key missing or born without a lifetime"
    return round(pttl / MINUTE_MS)


async def scenario(now: datetime, raw: aioredis.Redis, prefix: str, database: Database,
                   cipher: BuyerCipher, tag: str, parties: tuple[str, str, str]) -> Observed:
    """Counters and index driven with ``now`` as the application's clock; ``parties`` are
    (A, B, X) of the binding this run issues."""
    a, b, x = parties
    # The time-outs are generous: 40 concurrent takes open up to 40 connections at once, and
    # on a shared CI box that can take seconds; skew, not latency, is what this checks.
    counters = RedisRevealCounters(raw, prefix, timeout=STORE_TIMEOUT)
    resets_at = now + timedelta(hours=10)
    takes = await asyncio.gather(*(counters.take_quota(f"shop-{tag}", "day", 10, resets_at, now,
                                                       order_id=f"o-{i}")
                                   for i in range(40)))
    window_end = now + timedelta(seconds=60)
    hits = await asyncio.gather(*(counters.hit_velocity(f"acct-{tag}", 7, window_end, now)
                                  for _ in range(25)))
    quota_key = f"{prefix}:reveal:quota:shop-{tag}:day"
    velocity_key = f"{prefix}:reveal:velocity:acct-{tag}:7"

    index = RedisIndex(raw, prefix=f"{prefix}:{tag}", timeout=STORE_TIMEOUT)
    await rebuild_index(index, database, now=now)
    issued = await store(database, cipher, index).issue(
        "s1", f"o-{tag}", "", a, b, now, ttl=timedelta(hours=2), actor="t")
    lookup = StoreRouteLookup(database, cipher, index=index)
    reasons = []
    for at in (now, now + timedelta(minutes=5), now + timedelta(hours=2)):
        context = await lookup.find_for_call(a, x, at)
        request = CallRequest(caller=a, dialed=x, uniqueid="u", linkedid="l")
        reasons.append(decide(request, context, at, 600).reason)
    index_ttls = (await raw.pttl(index.ax_key(a, x)),
                  await raw.pttl(index.bx_key(cipher.blind_index(b), x)))
    await store(database, cipher, index).release(issued.binding_id, actor="t", now=now)
    return Observed(
        quota_taken=sum(t.taken for t in takes),
        quota_used=await counters.quota_used(f"shop-{tag}", "day"),
        quota_minutes_left=minutes(await raw.pttl(quota_key)),
        velocity_hits=tuple(sorted(hits)),
        velocity_minutes_left=minutes(await raw.pttl(velocity_key)),
        index_minutes_left=(minutes(index_ttls[0]), minutes(index_ttls[1])),
        reasons=tuple(reasons),
        index_hits=lookup.index_hits,
    )


@pytest.mark.parametrize("skew", [-WEEK, WEEK], ids=["app-a-week-behind", "app-a-week-ahead"])
async def test_redis_paths_ignore_clock_skew(skew: timedelta, raw: aioredis.Redis,
                                             redis_prefix: str, database: Database,
                                             cipher: BuyerCipher) -> None:
    await seed(database, pool=[(X1, "", None), (X2, "", None)])
    in_step = await scenario(await redis_now(raw), raw, redis_prefix, database, cipher, "same",
                             (A1, B1, X1))
    skewed = await scenario(await redis_now(raw) + skew, raw, redis_prefix, database, cipher,
                            "skew", (A2, B2, X2))
    assert in_step == Observed(
        quota_taken=10, quota_used=10, quota_minutes_left=(10 + 48) * 60,
        velocity_hits=tuple(range(1, 26)), velocity_minutes_left=2,
        # The binding's two hours, then the look-back as an ended marker; Redis answers all
        # three calls (the expired one from the marker).
        index_minutes_left=(120 + KEEP_ENDED_MINUTES, 120 + KEEP_ENDED_MINUTES),
        reasons=(Reason.BRIDGED, Reason.BRIDGED, Reason.BINDING_EXPIRED), index_hits=3)
    assert skewed == in_step
