"""Reveal counters that stay exact under concurrency: the shop's daily plaintext quota and the
per-account reveal velocity.

SQL: one row per (scope, subject, bucket), changed by a single upsert (``INSERT … ON CONFLICT
DO UPDATE SET used = used + 1 [WHERE used < :limit] RETURNING used``) — no read-modify-write.
Redis (when configured): ``INCR``/``PEXPIRE`` in a transaction for velocity, a Lua script for
the quota (check and increment in one atomic step); a reveal's velocity hit and quota unit are
one script, and the hits of reveals that arrive together one call of it. Keys never hold a
buyer number.

Redis runs on its own clock, which need not agree with ours: the bucket (window number, quota
day) is chosen from the caller's ``now`` and goes into the key, and a key's lifetime is sent as
a duration from that same ``now`` (never an absolute instant such as ``EXPIREAT``). A skew of
minutes or days therefore changes neither which key counts a reveal nor how long it lives.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from binding_store.api_models import RevealCounter
from binding_store.db import Database
from binding_store.group_commit import Coalescer
from routing.errors import StoreUnavailable
from routing.reveal_ports import QuotaAsk, QuotaTake

QUOTA = "quota"
QUOTA_ORDER = "quota_order"  # marks an order that has its unit for the day
VELOCITY = "velocity"
_KEEP = timedelta(days=2)  # counters outlive their bucket a little (for reports)
_Hit = tuple[list[str], list[str]]  # one reveal's keys and arguments in the hits script


def order_key(shop_id: str, order_id: str) -> str:
    """The order's marker subject: fixed length (64), whatever the ids' lengths."""
    return hashlib.sha256(f"{shop_id}\x00{order_id}".encode()).hexdigest()


class SqlRevealCounters:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._insert: Any = postgresql.insert if db.dialect == "postgresql" else sqlite.insert

    async def _upsert(self, scope: str, subject: str, bucket: str, expires_at: datetime,
                      limit: int | None) -> int | None:
        table = RevealCounter.__table__
        stmt = self._insert(table).values(scope=scope, subject=subject, bucket=bucket, used=1,
                                          expires_at=expires_at)
        where = table.c.used < limit if limit is not None else None
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.c.scope, table.c.subject, table.c.bucket],
            set_={"used": table.c.used + 1}, where=where,
        ).returning(table.c.used)
        async with self._db.session() as session:
            used = (await session.execute(stmt)).scalar_one_or_none()
            await session.commit()
        return None if used is None else int(used)

    async def hit_velocity(self, account_id: str, window: int, window_end: datetime,
                           now: datetime) -> int:
        used = await self._upsert(VELOCITY, account_id, str(window), window_end + _KEEP, None)
        assert used is not None
        return used

    async def hit(self, account_id: str, window: int, window_end: datetime, now: datetime, *,
                  velocity_limit: int, quota: QuotaAsk | None) -> tuple[int, QuotaTake | None]:
        count = await self.hit_velocity(account_id, window, window_end, now)
        if quota is None or count > velocity_limit:
            return count, None
        return count, await self.take_quota(quota.shop_id, quota.day, quota.limit,
                                            quota.resets_at, now, order_id=quota.order_id)

    async def take_quota(self, shop_id: str, day: str, limit: int, resets_at: datetime,
                         now: datetime, *, order_id: str) -> QuotaTake:
        # The order's marker and the shop's count change in one transaction: a concurrent
        # reveal of the same order waits on the marker's key and then finds it (or, if this
        # one rolled back, takes the unit itself).
        table = RevealCounter.__table__
        expires = resets_at + _KEEP
        mark = self._insert(table).values(
            scope=QUOTA_ORDER, subject=order_key(shop_id, order_id), bucket=day, used=1,
            expires_at=expires,
        ).on_conflict_do_nothing(
            index_elements=[table.c.scope, table.c.subject, table.c.bucket],
        ).returning(table.c.used)
        count = self._insert(table).values(
            scope=QUOTA, subject=shop_id, bucket=day, used=1, expires_at=expires,
        ).on_conflict_do_update(
            index_elements=[table.c.scope, table.c.subject, table.c.bucket],
            set_={"used": table.c.used + 1}, where=table.c.used < limit,
        ).returning(table.c.used)
        used_now = select(table.c.used).where(table.c.scope == QUOTA,
                                              table.c.subject == shop_id,
                                              table.c.bucket == day)
        async with self._db.session() as session:
            if (await session.execute(mark)).scalar_one_or_none() is None:
                used = (await session.execute(used_now)).scalar_one_or_none()
                await session.rollback()
                return QuotaTake(taken=True, used=int(used or 0))
            used = None
            if limit > 0:
                used = (await session.execute(count)).scalar_one_or_none()
            if used is None:
                current = (await session.execute(used_now)).scalar_one_or_none()
                await session.rollback()
                return QuotaTake(taken=False, used=int(current or 0))
            await session.commit()
        return QuotaTake(taken=True, used=int(used), first=True)

    async def give_back_quota(self, shop_id: str, day: str, *, order_id: str) -> None:
        row = RevealCounter
        async with self._db.session() as session:
            gone = await session.execute(
                delete(row).where(row.scope == QUOTA_ORDER,
                                  row.subject == order_key(shop_id, order_id),
                                  row.bucket == day))
            if getattr(gone, "rowcount", 0):
                await session.execute(
                    update(row)
                    .where(row.scope == QUOTA, row.subject == shop_id, row.bucket == day,
                           row.used > 0)
                    .values(used=row.used - 1)
                )
            await session.commit()

    async def quota_used(self, shop_id: str, day: str) -> int:
        table = RevealCounter.__table__
        async with self._db.session() as session:
            used = (await session.execute(
                select(table.c.used).where(table.c.scope == QUOTA, table.c.subject == shop_id,
                                           table.c.bucket == day)
            )).scalar_one_or_none()
        return int(used or 0)

    async def purge(self, now: datetime) -> int:
        """Delete counters whose bucket is long over; the number of rows deleted."""
        async with self._db.session() as session:
            result = await session.execute(
                delete(RevealCounter).where(RevealCounter.expires_at < now))
            await session.commit()
        return int(getattr(result, "rowcount", 0) or 0)


# For order ARGV[3]: if it already has its unit of the day (member of the set KEYS[2]),
# {1, used, 0}; else take one unit if fewer than ARGV[1] are used ({1, used, 1}, the order
# joins the set) or refuse ({0, used, 0}). Both keys live ARGV[2] ms from first use.
_TAKE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if redis.call('SISMEMBER', KEYS[2], ARGV[3]) == 1 then return {1, used, 0} end
if used >= tonumber(ARGV[1]) then return {0, used, 0} end
used = redis.call('INCR', KEYS[1])
if used == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if redis.call('SADD', KEYS[2], ARGV[3]) == 1 and redis.call('SCARD', KEYS[2]) == 1 then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
return {1, used, 1}
"""
# Hits of several reveals, one after the other, each: the velocity hit (INCR, PEXPIRE of its
# velocity key by its ttl ms) and, when it asks for a unit and the new count is at most its
# velocity limit, the quota take of _TAKE. ARGV[1]: how many; then per hit ARGV: 0 (no unit
# asked) or 1, the velocity ttl, the velocity limit, and with a unit: the quota limit, the
# quota ttl, the order; KEYS: the velocity key, and with a unit: the quota key, the orders'
# set. Per hit {count} or {count, taken, used, first}.
_HITS = """
local out, k, a = {}, 1, 2
for j = 1, tonumber(ARGV[1]) do
  local ask, velocity = ARGV[a] == '1', KEYS[k]
  local count = redis.call('INCR', velocity)
  redis.call('PEXPIRE', velocity, ARGV[a + 1])
  if not ask or count > tonumber(ARGV[a + 2]) then
    out[j] = {count}
  else
    local quota, orders, order = KEYS[k + 1], KEYS[k + 2], ARGV[a + 5]
    local used = tonumber(redis.call('GET', quota) or '0')
    if redis.call('SISMEMBER', orders, order) == 1 then
      out[j] = {count, 1, used, 0}
    elseif used >= tonumber(ARGV[a + 3]) then
      out[j] = {count, 0, used, 0}
    else
      used = redis.call('INCR', quota)
      if used == 1 then redis.call('PEXPIRE', quota, ARGV[a + 4]) end
      if redis.call('SADD', orders, order) == 1 and redis.call('SCARD', orders) == 1 then
        redis.call('PEXPIRE', orders, ARGV[a + 4])
      end
      out[j] = {count, 1, used, 1}
    end
  end
  if ask then k, a = k + 3, a + 6 else k, a = k + 1, a + 3 end
end
return out
"""
# Reveals that arrive together go to Redis as one script call (a call costs this process
# more than the script costs Redis): up to this many while a call is under way.
_MAX_HITS = 64
_HITS_INFLIGHT = 2
_VELOCITY_SLACK = timedelta(seconds=60)
_GIVE_BACK = """
if redis.call('SREM', KEYS[2], ARGV[1]) == 0 then return 0 end
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used > 0 then return redis.call('DECR', KEYS[1]) end
return 0
"""


def lifetime_ms(until: datetime, now: datetime) -> int:
    """How long a key must live, in ms, measured on the caller's clock (at least 1 s)."""
    return max(1000, int((until - now).total_seconds() * 1000))


class RedisRevealCounters:
    def __init__(self, client: Redis, prefix: str, timeout: float = 0.5) -> None:
        self._redis = client
        self._prefix = prefix
        self._timeout = timeout
        self._hits = client.register_script(_HITS)  # EVALSHA, loaded again after a fail-over
        self._batches: Coalescer[_Hit, list[Any]] = Coalescer(
            self._hit_batch, max_batch=_MAX_HITS, max_inflight=_HITS_INFLIGHT)

    def _key(self, scope: str, subject: str, bucket: str) -> str:
        return f"{self._prefix}:reveal:{scope}:{subject}:{bucket}"

    @asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self._timeout):
                yield
        except (RedisConnectionError, RedisTimeoutError, TimeoutError) as exc:
            raise StoreUnavailable(f"redis unavailable: {type(exc).__name__}") from exc
        except RedisError as exc:
            raise StoreUnavailable(f"redis error: {type(exc).__name__}") from exc

    async def hit_velocity(self, account_id: str, window: int, window_end: datetime,
                           now: datetime) -> int:
        key = self._key(VELOCITY, account_id, str(window))
        async with self._guard():
            pipe = self._redis.pipeline(transaction=True)
            pipe.incr(key)
            pipe.pexpire(key, lifetime_ms(window_end + _VELOCITY_SLACK, now))
            used, _ = await pipe.execute()
        return int(used)

    async def hit(self, account_id: str, window: int, window_end: datetime, now: datetime, *,
                  velocity_limit: int, quota: QuotaAsk | None) -> tuple[int, QuotaTake | None]:
        keys = [self._key(VELOCITY, account_id, str(window))]
        args = ["0" if quota is None else "1",
                str(lifetime_ms(window_end + _VELOCITY_SLACK, now)), str(velocity_limit)]
        if quota is not None:
            keys += [self._key(QUOTA, quota.shop_id, quota.day),
                     self._key(QUOTA_ORDER, quota.shop_id, quota.day)]
            args += [str(max(quota.limit, 0)), str(lifetime_ms(quota.resets_at + _KEEP, now)),
                     quota.order_id]
        async with self._guard():
            answer = await self._batches.submit((keys, args))
        count = int(answer[0])
        if len(answer) == 1:
            return count, None
        return count, QuotaTake(taken=bool(int(answer[1])), used=int(answer[2]),
                                first=bool(int(answer[3])))

    async def _hit_batch(self, hits: list[_Hit]) -> list[list[Any]]:
        keys = [key for hit_keys, _ in hits for key in hit_keys]
        args = [str(len(hits)), *(arg for _, hit_args in hits for arg in hit_args)]
        # a fault fails every hit of the batch (fail closed), as StoreUnavailable
        async with self._guard():
            answers = await self._hits(keys=keys, args=args)
        return list(answers)

    async def take_quota(self, shop_id: str, day: str, limit: int, resets_at: datetime,
                         now: datetime, *, order_id: str) -> QuotaTake:
        lifetime = lifetime_ms(resets_at + _KEEP, now)
        async with self._guard():
            taken, used, first = await self._redis.eval(
                _TAKE, 2, self._key(QUOTA, shop_id, day), self._key(QUOTA_ORDER, shop_id, day),
                str(max(limit, 0)), str(lifetime), order_id)
        return QuotaTake(taken=bool(int(taken)), used=int(used), first=bool(int(first)))

    async def give_back_quota(self, shop_id: str, day: str, *, order_id: str) -> None:
        async with self._guard():
            await self._redis.eval(_GIVE_BACK, 2, self._key(QUOTA, shop_id, day),
                                   self._key(QUOTA_ORDER, shop_id, day), order_id)

    async def quota_used(self, shop_id: str, day: str) -> int:
        async with self._guard():
            value = await self._redis.get(self._key(QUOTA, shop_id, day))
        return int(value or 0)
